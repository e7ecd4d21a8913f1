/** The command stores (memory, and redis against the shared Redis): order, TTL, states, caps, retention. */
import { rejection } from '../support/api-error.js';
import { afterAll, describe, expect, it } from 'vitest';
import { type CommandStore } from '../../src/state/command-store.js';
import { MemoryCommandStore } from '../../src/state/memory-command-store.js';
import { RedisCommandStore } from '../../src/state/redis-command-store.js';
import type { RedisConnection } from '../../src/state/redis.js';
import { dropPrefix, testRedis, uniquePrefix } from '../support/redis.js';

const LIMITS = { maxQueuedPerThing: 3, maxCommandBytes: 1024, retentionMs: 60_000 };
const T0 = Date.UTC(2030, 0, 1);

const caps: string[] = [];
const redisPrefix = uniquePrefix('commands');
let redis: RedisConnection | undefined;

const stores: [string, () => CommandStore][] = [
  [
    'memory',
    () =>
      new MemoryCommandStore({ ...LIMITS, maxThings: 1000, maxBytes: 1 << 20, onCap: (c) => caps.push(c) }),
  ],
  [
    'redis',
    () => {
      redis ??= testRedis(redisPrefix);
      return new RedisCommandStore(redis, LIMITS);
    },
  ],
];

afterAll(async () => {
  if (redis) {
    await dropPrefix(redis, redisPrefix);
    await redis.close();
  }
});

let n = 0;
const thing = () => `thing-${++n}`;

describe.each(stores)('%s command store', (_name, make) => {
  const store = make();

  it('queues in order with increasing ids starting at the current Unix time', async () => {
    const t = thing();
    const a = await store.enqueue(t, '{"op":"a"}', 10_000, T0);
    const b = await store.enqueue(t, '"b"', 10_000, T0 + 1);
    expect(a.id).toBe(Math.floor(T0 / 1000));
    expect(b.id).toBe(a.id + 1);
    const pending = await store.pending(t, T0 + 2);
    expect(pending.map((c) => [c.id, c.data, c.state])).toEqual([
      [a.id, '{"op":"a"}', 'queued'],
      [b.id, '"b"', 'queued'],
    ]);
    expect(pending[0]).toMatchObject({ enqueuedAt: T0, expiresAt: T0 + 10_000, attempts: 0 });
  });

  it('queued → sent → delivered, up to the confirmed id only', async () => {
    const t = thing();
    const a = await store.enqueue(t, '1', 10_000, T0);
    const b = await store.enqueue(t, '2', 10_000, T0);
    const c = await store.enqueue(t, '3', 10_000, T0);
    await store.markSent(t, [a.id, b.id], T0 + 5);
    await store.markSent(t, [a.id, b.id], T0 + 6);
    let list = await store.list(t, T0 + 7);
    expect(list.map((x) => [x.state, x.attempts, x.sentAt])).toEqual([
      ['sent', 2, T0 + 6],
      ['sent', 2, T0 + 6],
      ['queued', 0, undefined],
    ]);
    expect(await store.markDelivered(t, b.id, T0 + 8)).toBe(2);
    expect(await store.markDelivered(t, b.id, T0 + 9)).toBe(0);
    list = await store.list(t, T0 + 10);
    expect(list.map((x) => [x.id, x.state, x.finishedAt])).toEqual([
      [a.id, 'delivered', T0 + 8],
      [b.id, 'delivered', T0 + 8],
      [c.id, 'queued', undefined],
    ]);
    expect((await store.pending(t, T0 + 10)).map((x) => x.id)).toEqual([c.id]);
  });

  it('commands past their TTL expire, sent or not, and are not delivered afterwards', async () => {
    const t = thing();
    const before = store.expiredCount;
    const a = await store.enqueue(t, '1', 1000, T0);
    await store.enqueue(t, '2', 5000, T0);
    await store.markSent(t, [a.id], T0 + 10);
    expect((await store.pending(t, T0 + 1000)).map((x) => x.data)).toEqual(['2']);
    expect(store.expiredCount - before).toBe(1);
    expect(await store.markDelivered(t, a.id, T0 + 1001)).toBe(0);
    const list = await store.list(t, T0 + 1002);
    expect(list.map((x) => [x.state, x.finishedAt])).toEqual([
      ['expired', T0 + 1000],
      ['queued', undefined],
    ]);
    await store.markSent(t, [a.id], T0 + 1003);
    expect((await store.list(t, T0 + 1004))[0].state).toBe('expired');
  });

  it('refuses a command past the per-thing cap with 429; finished ones do not count', async () => {
    const t = thing();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await store.enqueue(t, String(i), 10_000, T0)).id);
    const e = await rejection(store.enqueue(t, '4', 10_000, T0));
    expect([e.status, e.code]).toEqual([429, 'LimitExceededException']);
    await store.markDelivered(t, ids[0], T0 + 1);
    expect((await store.enqueue(t, '4', 10_000, T0 + 2)).id).toBe(ids[2] + 1);
  });

  it('drops finished commands after the retention period and beyond the per-thing cap', async () => {
    const t = thing();
    const a = await store.enqueue(t, 'a', 1000, T0);
    await store.markDelivered(t, a.id, T0 + 1);
    expect((await store.list(t, T0 + 2)).length).toBe(1);
    expect((await store.list(t, T0 + 1 + LIMITS.retentionMs)).length).toBe(0);
    const u = thing();
    for (let i = 0; i < 5; i++) {
      const c = await store.enqueue(u, String(i), 10_000, T0);
      await store.markDelivered(u, c.id, T0);
    }
    expect((await store.list(u, T0)).map((c) => c.data)).toEqual(['2', '3', '4']);
  });

  it('keeps ids increasing after earlier ones finished', async () => {
    const t = thing();
    const a = await store.enqueue(t, 'a', 1000, T0);
    await store.markDelivered(t, a.id, T0);
    const b = await store.enqueue(t, 'b', 1000, T0 + 5);
    expect(b.id).toBe(a.id + 1);
  });

  it('keeps data byte-exact, including separators and new lines', async () => {
    const t = thing();
    const data = JSON.stringify({ s: 'a|b\n|c', u: 'é€😀' });
    await store.enqueue(t, data, 1000, T0);
    expect((await store.pending(t, T0))[0].data).toBe(data);
  });

  it('tells listeners about changes', async () => {
    const t = thing();
    const seen: string[] = [];
    store.onChange((x) => seen.push(x));
    await redis?.subscribed;
    const c = await store.enqueue(t, '1', 1000, T0);
    await store.markDelivered(t, c.id, T0);
    await expect.poll(() => seen.filter((x) => x === t).length).toBe(2);
  });
});

describe('memory command store caps', () => {
  it('refuses new things past maxThings and commands past maxBytes, reporting the cap', async () => {
    const seen: string[] = [];
    const s = new MemoryCommandStore({ ...LIMITS, maxThings: 1, maxBytes: 400, onCap: (c) => seen.push(c) });
    await s.enqueue('a', '1', 1000, T0);
    expect((await rejection(s.enqueue('b', '1', 1000, T0))).status).toBe(503);
    expect((await rejection(s.enqueue('a', 'x'.repeat(300), 1000, T0))).status).toBe(503);
    expect(seen).toEqual(['downlink_memory_command_queues', 'downlink_memory_command_bytes']);
    expect(s.size).toBe(1);
    s.sweep(T0 + 10_000 + LIMITS.retentionMs);
    expect(s.size).toBe(0);
    expect(s.byteSize).toBe(0);
    await s.close();
  });
});

describe('redis command store across replicas', () => {
  it('two connections (replicas) share one queue and hear each other’s changes', async () => {
    const prefix = uniquePrefix('replicas');
    const r1 = testRedis(prefix);
    const r2 = testRedis(prefix);
    try {
      const a = new RedisCommandStore(r1, LIMITS);
      const b = new RedisCommandStore(r2, LIMITS);
      const heard: string[] = [];
      b.onChange((t) => heard.push(t));
      await r2.subscribed;
      const c = await a.enqueue('shared', '"x"', 10_000, T0);
      await expect.poll(() => heard).toEqual(['shared']);
      expect((await b.pending('shared', T0)).map((x) => x.id)).toEqual([c.id]);
      await b.markSent('shared', [c.id], T0 + 1);
      expect(await a.markDelivered('shared', c.id, T0 + 2)).toBe(1);
      expect((await b.list('shared', T0 + 3))[0].state).toBe('delivered');
      expect(await r1.client.pttl(`${prefix}cmd:{shared}`)).toBeGreaterThan(60_000);
    } finally {
      await dropPrefix(r1, prefix);
      await r1.close();
      await r2.close();
    }
  });

  it('fails with 503 when Redis cannot be reached', async () => {
    const { RedisConnection } = await import('../../src/state/redis.js');
    const { silentLogger } = await import('../../src/ops/logger.js');
    const down = new RedisConnection(
      { url: 'redis://127.0.0.1:1', keyPrefix: 'x:', commandTimeoutMs: 200 },
      silentLogger(),
    );
    try {
      const e = await rejection(new RedisCommandStore(down, LIMITS).pending('t', T0));
      expect([e.status, e.code]).toEqual([503, 'ServiceUnavailableException']);
    } finally {
      await down.close();
    }
  });
});
