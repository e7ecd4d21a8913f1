/** The memory frame counter store: its cap on devices, and giving back a failed claim. */
import { describe, expect, it } from 'vitest';
import { MemoryFrameCounters } from '../../src/state/frame-counters.js';

describe('memory frame counters', () => {
  it('frame counters refuse unknown devices past the cap and give back a failed claim', () => {
    let caps = 0;
    const c = new MemoryFrameCounters(1, () => caps++);
    const rule = { bits: 16, maxGap: 10 } as const;
    const a = c.claim('a', 1, 'h', rule);
    expect(a.verdict).toBe('new');
    expect(c.claim('b', 1, 'h', rule).verdict).toBe('full');
    expect(caps).toBe(1);
    const a2 = c.claim('a', 2, 'h2', rule);
    c.release('a', 2, 'h2', a2.previous);
    expect(c.claim('a', 2, 'h2', rule).verdict).toBe('new');
  });
});
