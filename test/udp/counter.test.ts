/** The frame counter rule: new within the gap, duplicate, replay, restart, too far; counters wrap. */
import { describe, expect, it } from 'vitest';
import { judgeCounter } from '../../src/udp/counter.js';

describe('frame counter rule', () => {
  it('judges counters: new within the gap, duplicate, replay, restart, too far; wraps', () => {
    const r = { bits: 16, maxGap: 100 } as const;
    expect(judgeCounter(undefined, 7, r)).toBe('new');
    expect(judgeCounter(10, 11, r)).toBe('new');
    expect(judgeCounter(10, 110, r)).toBe('new');
    expect(judgeCounter(10, 111, r)).toBe('gap');
    expect(judgeCounter(10, 10, r)).toBe('duplicate');
    expect(judgeCounter(10, 9, r)).toBe('replay');
    expect(judgeCounter(5000, 4000, r)).toBe('replay');
    expect(judgeCounter(5000, 3, r)).toBe('reset');
    expect(judgeCounter(65535, 0, r)).toBe('new');
    expect(judgeCounter(65530, 40, r)).toBe('new');
    expect(judgeCounter(2 ** 32 - 1, 0, { bits: 32, maxGap: 16384 })).toBe('new');
  });
});
