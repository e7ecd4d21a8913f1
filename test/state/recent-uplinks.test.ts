/** The memory store of recent uplinks (raw UDP deduplication) stays bounded. */
import { describe, expect, it } from 'vitest';
import { MemoryRecentUplinks } from '../../src/state/recent-uplinks.js';

describe('memory recent uplinks', () => {
  it('recent uplinks stay bounded', () => {
    let dropped = 0;
    const r = new MemoryRecentUplinks(4, (n) => (dropped += n));
    for (let i = 0; i < 10; i++) expect(r.seen('d', `h${i}`, 60_000)).toBe(false);
    expect(r.size).toBeLessThanOrEqual(4);
    expect(dropped).toBeGreaterThan(0);
    expect(r.seen('d', 'h9', 60_000)).toBe(true);
  });
});
