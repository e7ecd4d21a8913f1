import { describe, expect, it } from 'vitest';
import { decodeTag } from '../../src/downlink/document.js';
import { KeyedRateLimiter } from '../../src/downlink/rate-limit.js';
import { ThingCache, ThingEntry } from '../../src/downlink/thing-cache.js';
import type { Command } from '../../src/state/command-store.js';

const command = (
  id: number,
  expiresAt: number,
  data = '"x"',
  state: Command['state'] = 'queued',
): Command => ({
  id,
  data,
  state,
  enqueuedAt: 0,
  expiresAt,
  attempts: 0,
});

describe('thing cache', () => {
  it('evicts the oldest entries past maxEntries, never the one in use, and reports the cap', () => {
    const caps: [string, number][] = [];
    const cache = new ThingCache(3, 1 << 20, (cap, n) => caps.push([cap, n]));
    for (const t of ['a', 'b', 'c', 'd']) cache.get(t);
    expect(cache.size).toBe(3);
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.peek('d')).toBeDefined();
    expect(caps).toEqual([['downlink_cache_entries', 1]]);
  });

  it('evicts by bytes when an entry grows, keeping the one that grew', () => {
    const caps: string[] = [];
    const cache = new ThingCache(100, 2000, (cap) => caps.push(cap));
    cache.get('a');
    cache.get('b');
    const c = cache.get('c');
    c.commands = [command(1, Infinity, 'x'.repeat(1200))];
    c.measure(0);
    cache.resize(c);
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.peek('c')).toBe(c);
    expect(cache.byteSize).toBeLessThanOrEqual(2000);
    expect(caps).toContain('downlink_cache_bytes');
    // An entry alone over the cap stays: it is in use.
    c.commands = [command(1, Infinity, 'x'.repeat(5000))];
    c.measure(0);
    cache.resize(c);
    expect(cache.peek('c')).toBe(c);
    expect(cache.size).toBe(1);
  });

  it('builds the document: delta, unexpired commands in order up to the limit, tag and expiry', () => {
    const e = new ThingEntry('t');
    e.shadow = { version: 9, timestamp: 0, desired: { a: 1 }, reported: {} };
    e.delta = { a: 1 };
    e.commands = [
      command(0x1000001, 100, '"gone"'),
      command(0x1000002, 5000, '{"n":2}', 'sent'),
      command(0x1000003, 3000, 'not json'),
      command(0x1000004, 4000, '4'),
      command(0x1000005, 9000, '5'),
    ];
    const bad: number[] = [];
    const doc = e.build(1000, 2, (id) => bad.push(id));
    expect(doc.value).toEqual({
      version: 9,
      desired: { a: 1 },
      commands: [
        { id: 0x1000002, data: { n: 2 } },
        { id: 0x1000004, data: 4 },
      ],
    });
    expect(bad).toEqual([0x1000003]);
    expect(doc.validUntil).toBe(4000);
    expect(decodeTag(doc.etag)).toEqual({ version: 9, lastCommand: 4, desired: true, commands: 2 });
    expect(doc.empty).toBe(false);
    e.delta = undefined;
    e.commands = [];
    const empty = e.build(1000, 2, () => {});
    expect(empty.empty).toBe(true);
    expect(empty.value).toEqual({});
    expect(decodeTag(empty.etag)).toEqual({ version: 9, lastCommand: 0, desired: false, commands: 0 });
  });
});

describe('per-thing rate limiter', () => {
  it('allows the rate with a burst of the same size, refills with time, per key', () => {
    const l = new KeyedRateLimiter(2, 10, () => {});
    expect([l.take('a', 0), l.take('a', 0), l.take('a', 0)]).toEqual([true, true, false]);
    expect(l.take('b', 0)).toBe(true);
    expect(l.take('a', 250)).toBe(false);
    expect(l.take('a', 500)).toBe(true);
    expect(l.take('a', 500)).toBe(false);
  });

  it('forgets the oldest key past its cap and reports it', () => {
    let hits = 0;
    const l = new KeyedRateLimiter(1, 2, (n) => (hits += n));
    l.take('a', 0);
    l.take('b', 0);
    l.take('c', 0);
    expect(l.size).toBe(2);
    expect(hits).toBe(1);
    expect(l.take('a', 0)).toBe(true); // a was forgotten: a fresh bucket
  });
});
