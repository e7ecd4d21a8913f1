import { afterEach, describe, expect, it, vi } from 'vitest';
import { BoundedMap, type MapCap } from '../../src/collections/bounded-map.js';
import { prng } from '../support/prng.js';

function map(opts: { maxEntries: number; maxBytes?: number; ttlMs?: number; timer?: boolean }) {
  const caps: [MapCap, number][] = [];
  const m = new BoundedMap<string, number>({ ...opts, onCap: (cap, n) => caps.push([cap, n]) });
  return { m, caps };
}

describe('BoundedMap', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('evicts the oldest entries past maxEntries and reports each eviction', () => {
    const { m, caps } = map({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) m.set(k, k.charCodeAt(0));
    expect([...m.entries()].map(([k]) => k)).toEqual(['c', 'd', 'e']);
    expect(m.get('a')).toBeUndefined();
    expect(m.get('e')).toBe(101);
    expect(caps).toEqual([
      ['entries', 1],
      ['entries', 1],
    ]);
  });

  it('evicts by bytes when an entry grows, never the one that grew', () => {
    const { m, caps } = map({ maxEntries: 100, maxBytes: 100 });
    m.set('a', 1, 30);
    m.set('b', 2, 30);
    m.set('c', 3, 30);
    expect(m.byteSize).toBe(90);
    m.resize('a', 60);
    // 'a' is the oldest but in use: it goes to the back and 'b' goes instead.
    expect([...m.entries()].map(([k]) => k)).toEqual(['c', 'a']);
    expect(m.byteSize).toBe(90);
    expect(caps).toEqual([['bytes', 1]]);
    // An entry alone over the cap stays.
    m.resize('c', 10);
    m.resize('a', 500);
    expect([...m.entries()].map(([k]) => k)).toEqual(['a']);
    expect(m.byteSize).toBe(500);
    m.resize('nothing', 5);
    expect(m.size).toBe(1);
  });

  it('replaces an entry as the newest', () => {
    const { m, caps } = map({ maxEntries: 2 });
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3);
    m.set('c', 4);
    expect([...m.entries()]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
    expect(caps).toEqual([['entries', 1]]);
  });

  it('does not let deleted entries pile up behind the live ones', () => {
    const { m } = map({ maxEntries: 10 });
    for (let i = 0; i < 10_000; i++) {
      m.set('k', i);
      m.delete('other');
      m.set(`t${i % 3}`, i);
    }
    expect(m.size).toBe(4);
    const order = (m as unknown as { order: { length: number } }).order;
    expect(order.length).toBeLessThan(100);
    expect(m.delete('k')).toBe(true);
    expect(m.delete('k')).toBe(false);
  });

  it('forgets entries after their time to live, with and without a lookup', () => {
    vi.useFakeTimers({ now: 5_000 });
    const { m, caps } = map({ maxEntries: 10, ttlMs: 1000 });
    m.set('a', 1, 10);
    vi.advanceTimersByTime(500);
    m.set('b', 2, 10);
    vi.advanceTimersByTime(499);
    expect(m.get('a')).toBe(1);
    vi.setSystemTime(6_000); // the clock moves, the timer has not fired yet
    expect(m.get('a')).toBeUndefined();
    expect(m.has('b')).toBe(true);
    vi.advanceTimersByTime(500);
    expect(m.size).toBe(0);
    expect(m.byteSize).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(caps).toEqual([]);
  });

  it('on the owner’s clock: expires entries at the times given, at lookups and sweeps, with no timer', () => {
    vi.useFakeTimers({ now: 5_000 });
    const { m } = map({ maxEntries: 10, timer: false });
    m.set('a', 1, 10, 100);
    m.set('b', 2, 10, 300);
    m.set('c', 3, 10, 200); // placed by its time: expires before 'b'
    expect([...m.entries()].map(([k]) => k)).toEqual(['a', 'c', 'b']);
    expect(vi.getTimerCount()).toBe(0);
    expect(m.get('a', 99)).toBe(1);
    expect(m.get('a', 100)).toBeUndefined();
    m.sweep(250);
    expect([...m.entries()].map(([k]) => k)).toEqual(['b']);
    expect(m.byteSize).toBe(10);
    vi.advanceTimersByTime(10_000);
    expect(m.get('b', 299)).toBe(2);
  });

  it('tells onExpire of each entry a sweep or the timer expires, not of one a lookup finds expired', () => {
    vi.useFakeTimers({ now: 0 });
    const expired: [string, number][] = [];
    const swept = new BoundedMap<string, number>({
      maxEntries: 10,
      timer: false,
      onExpire: (k, v) => expired.push([k, v]),
    });
    swept.set('a', 1, 0, 100);
    swept.set('b', 2, 0, 200);
    swept.set('c', 3, 0, 300);
    expect(swept.get('a', 150)).toBeUndefined();
    swept.sweep(250);
    expect(expired).toEqual([['b', 2]]);
    swept.delete('c');
    swept.sweep(1000);
    expect(expired).toEqual([['b', 2]]);

    const timed = new BoundedMap<string, number>({
      maxEntries: 10,
      ttlMs: 50,
      onExpire: (k, v) => expired.push([k, v]),
    });
    timed.set('d', 4);
    vi.advanceTimersByTime(2000);
    expect(expired).toEqual([
      ['b', 2],
      ['d', 4],
    ]);
    expect(timed.size).toBe(0);
  });

  it('stores nothing when capped at 0 entries', () => {
    const { m, caps } = map({ maxEntries: 0 });
    m.set('a', 1);
    expect(m.size).toBe(0);
    expect(m.get('a')).toBeUndefined();
    expect(caps).toEqual([]);
  });

  it('keeps its counts under random use', () => {
    const rand = prng(99);
    const { m, caps } = map({ maxEntries: 20, maxBytes: 500 });
    const model = new Map<string, { value: number; bytes: number }>();
    const wrong: string[] = [];
    for (let step = 0; step < 3000; step++) {
      const key = `k${Math.floor(rand() * 40)}`;
      const bytes = Math.floor(rand() * 60);
      const r = rand();
      if (r < 0.5) {
        m.set(key, step, bytes);
        model.set(key, { value: step, bytes });
      } else if (r < 0.7) {
        m.resize(key, bytes);
        const e = model.get(key);
        if (e) e.bytes = bytes;
      } else if (r < 0.8) {
        if (m.delete(key) !== model.has(key)) wrong.push(`delete ${key}`);
        model.delete(key);
      }
      // Evicted entries leave the model; what is left must match, in value and bytes.
      let total = 0;
      for (const [k, e] of model) {
        const got = m.get(k);
        if (got === undefined) model.delete(k);
        else if (got !== e.value) wrong.push(`step ${step}: ${k} is ${got}, not ${e.value}`);
        else total += e.bytes;
      }
      if (m.size !== model.size) wrong.push(`step ${step}: size ${m.size}, not ${model.size}`);
      if (m.byteSize !== total) wrong.push(`step ${step}: ${m.byteSize} bytes, not ${total}`);
      if (m.size > 20 || m.byteSize > 500) wrong.push(`step ${step}: over a cap`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect([...m.entries()].length).toBe(m.size);
    expect(caps.some(([cap]) => cap === 'entries')).toBe(true);
    expect(caps.some(([cap]) => cap === 'bytes')).toBe(true);
  });
});
