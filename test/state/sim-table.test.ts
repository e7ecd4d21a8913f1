/** The memory IP → SIM table (RADIUS sessions): its cap and expiry. */
import { describe, expect, it } from 'vitest';
import { MemorySimTable } from '../../src/state/sim-table.js';

describe('memory SIM table', () => {
  it('the IP → SIM table drops the oldest session at its cap and expired sessions', async () => {
    let evicted = 0;
    const t = new MemorySimTable(2, (n) => (evicted += n));
    await t.put('a', { updatedAt: 1 }, 60_000);
    await t.put('b', { updatedAt: 2 }, 60_000);
    await t.put('c', { updatedAt: 3 }, 1);
    expect(evicted).toBe(1);
    expect(t.get('a')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 5));
    expect(t.get('c')).toBeUndefined();
    expect(t.get('b')).toBeDefined();
  });
});
