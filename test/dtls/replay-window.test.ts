/** The anti-replay window: each record number accepted once, nothing older than the window. */
import { describe, expect, it } from 'vitest';
import { replayFresh, replayMark, type ReplayState } from '../../src/dtls/server/replay-window.js';

describe('replay window', () => {
  const fresh = (): ReplayState => ({ top: -1, lo: 0, hi: 0 });

  it('accepts each number once, in any order inside 64, and nothing older', () => {
    const w = fresh();
    const order = [0, 5, 3, 63, 64, 1, 100, 40, 37, 99];
    for (const n of order) {
      expect(replayFresh(w, n), `first ${n}`).toBe(true);
      replayMark(w, n);
      expect(replayFresh(w, n), `again ${n}`).toBe(false);
    }
    // The window is the 64 numbers up to 100: 37..100.
    expect(replayFresh(w, 38)).toBe(true);
    expect(replayFresh(w, 36)).toBe(false);
    expect(replayFresh(w, 0)).toBe(false);
    for (const n of [40, 37, 63, 64, 99, 100]) expect(replayFresh(w, n)).toBe(false);
  });

  it('tells when a record moved the window (newest seen)', () => {
    const w = fresh();
    expect(replayMark(w, 10)).toBe(true);
    expect(replayMark(w, 8)).toBe(false);
    expect(replayMark(w, 11)).toBe(true);
    expect(replayMark(w, 2 ** 47)).toBe(true);
    expect(replayFresh(w, 11)).toBe(false);
    expect(replayFresh(w, 2 ** 47 - 63)).toBe(true);
  });

  it('agrees with a set-based model on a long random walk, across 32-bit shifts', () => {
    const w = fresh();
    const seen = new Set<number>();
    let top = -1;
    let x = 12345;
    const rand = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 20000; i++) {
      const n = Math.max(0, top + (rand() % 100) - 70);
      const expected = n > top || (top - n < 64 && !seen.has(n));
      expect(replayFresh(w, n)).toBe(expected);
      if (expected) {
        replayMark(w, n);
        seen.add(n);
        top = Math.max(top, n);
      }
    }
  });
});
