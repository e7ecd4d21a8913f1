import { describe, expect, it } from 'vitest';
import { DedupCache, EMPTY_ACKED, ENTRY_OVERHEAD_BYTES, IN_PROGRESS } from '../../src/coap/dedup.js';

const CON = 247_000;
const NON = 145_000;

function cache(maxEntries = 1000, maxBytes = 1_000_000) {
  const evicted: number[] = [];
  const c = new DedupCache(maxEntries, maxBytes, CON, NON, (n) => evicted.push(n));
  return { c, evicted };
}

describe('DedupCache', () => {
  it('tracks a request from in progress to empty-ACKed to its response', () => {
    const { c } = cache();
    c.add('p', 7, true, 0);
    expect(c.get('p', 7, 1)).toBe(IN_PROGRESS);
    c.setEmptyAcked('p', 7);
    expect(c.get('p', 7, 2)).toBe(EMPTY_ACKED);
    c.setResponse('p', 7, Buffer.from([0x60, 0x44, 0, 7, 0xff, 0x80]));
    expect(Buffer.from(c.get('p', 7, 3) as string, 'latin1')).toEqual(
      Buffer.from([0x60, 0x44, 0, 7, 0xff, 0x80]),
    );
    expect(c.byteSize).toBe(ENTRY_OVERHEAD_BYTES + 6);
    expect(c.hits).toBe(3);
  });

  it('keys by peer and Message ID', () => {
    const { c } = cache();
    c.add('a', 1, true, 0);
    expect(c.get('b', 1, 0)).toBeUndefined();
    expect(c.get('a', 2, 0)).toBeUndefined();
    expect(c.get('a', 1, 0)).toBe(IN_PROGRESS);
  });

  it('forgets CON requests after EXCHANGE_LIFETIME and NON requests after NON_LIFETIME, exactly', () => {
    const { c } = cache();
    c.add('p', 1, true, 1000);
    c.add('p', 2, false, 1000);
    expect(c.get('p', 2, 1000 + NON - 1)).toBe(IN_PROGRESS);
    expect(c.get('p', 2, 1000 + NON)).toBeUndefined();
    expect(c.get('p', 1, 1000 + NON)).toBe(IN_PROGRESS);
    expect(c.get('p', 1, 1000 + CON - 1)).toBe(IN_PROGRESS);
    expect(c.get('p', 1, 1000 + CON)).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.peerCount).toBe(0);
  });

  it('evicts the oldest entries across both lifetimes when the entry cap bites', () => {
    const { c, evicted } = cache(3);
    c.add('p', 1, true, 10);
    c.add('p', 2, false, 20);
    c.add('p', 3, true, 30);
    c.add('p', 4, false, 40);
    expect(c.size).toBe(3);
    expect(c.get('p', 1, 50)).toBeUndefined();
    c.add('p', 5, true, 50);
    expect(c.get('p', 2, 60)).toBeUndefined();
    expect([3, 4, 5].map((m) => c.get('p', m, 60))).toEqual([IN_PROGRESS, IN_PROGRESS, IN_PROGRESS]);
    expect(evicted).toEqual([1, 1]);
  });

  it('evicts for the byte cap, keeping at least the newest entry', () => {
    const { c, evicted } = cache(1000, ENTRY_OVERHEAD_BYTES * 2 + 100);
    for (let m = 0; m < 3; m++) {
      c.add('p', m, true, m);
      c.setResponse('p', m, Buffer.alloc(30));
    }
    expect(c.size).toBe(2);
    c.add('p', 9, true, 9);
    c.setResponse('p', 9, Buffer.alloc(5000));
    expect(c.size).toBe(1);
    expect(c.get('p', 9, 10)).toHaveLength(5000);
    expect(evicted.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('grows its rings and stays consistent over many entries and peers', () => {
    const { c } = cache(50_000, 100_000_000);
    for (let i = 0; i < 120_000; i++) c.add(`peer${i % 37}`, i & 0xffff, i % 3 !== 0, i);
    expect(c.size).toBe(50_000);
    // The newest are remembered, the oldest are not.
    expect(c.get(`peer${119_999 % 37}`, 119_999 & 0xffff, 120_000)).toBe(IN_PROGRESS);
    expect(c.get(`peer${1000 % 37}`, 1000, 120_000)).toBeUndefined();
    c.sweep(120_000 + CON);
    expect(c.size).toBe(0);
    expect(c.byteSize).toBe(0);
  });

  it('ignores responses for requests it no longer remembers', () => {
    const { c } = cache(1);
    c.add('p', 1, true, 0);
    c.add('p', 2, true, 1);
    c.setResponse('p', 1, Buffer.alloc(10));
    expect(c.get('p', 1, 2)).toBeUndefined();
    expect(c.byteSize).toBe(ENTRY_OVERHEAD_BYTES);
  });
});
