/** The per-device log limit: one line per key per interval, counting what it held back, in a capped table. */
import { describe, expect, it } from 'vitest';
import { KeyedLogLimit } from '../../src/ops/rate-limit-log.js';

describe('KeyedLogLimit', () => {
  it('lets one line per key through per interval and says how many it held back', () => {
    const limit = new KeyedLogLimit(1000, 10);
    expect(limit.take('a', 0)).toBe(0);
    expect(limit.take('a', 10)).toBeUndefined();
    expect(limit.take('a', 999)).toBeUndefined();
    expect(limit.take('b', 999)).toBe(0); // another device is not held back by a's lines
    expect(limit.take('a', 1000)).toBe(2);
    expect(limit.take('a', 1500)).toBeUndefined();
    expect(limit.take('a', 2000)).toBe(1);
  });

  it('holds at most maxKeys keys, forgetting the one that logged longest ago, and reports the cap', () => {
    let caps = 0;
    const limit = new KeyedLogLimit(60_000, 3, () => caps++);
    for (const [i, k] of ['a', 'b', 'c'].entries()) limit.take(k, i);
    expect(caps).toBe(0);
    limit.take('d', 10); // the table is full: a (oldest line) goes
    expect(limit.size).toBe(3);
    expect(caps).toBe(1);
    expect(limit.take('b', 20)).toBeUndefined(); // still remembered
    expect(limit.take('a', 30)).toBe(0); // forgotten, so it may log again (and b, now the oldest, goes)
    expect(caps).toBe(2);
    expect(limit.take('c', 40)).toBeUndefined();
    expect(limit.take('b', 50)).toBe(0);
  });
});
