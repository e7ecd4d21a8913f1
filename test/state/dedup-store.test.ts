/** The dedup stores (memory and Redis) keep the same promises; the Redis one on a real Redis. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/ops/logger.js';
import type { DedupStore } from '../../src/state/dedup-store.js';
import { MemoryDedupStore } from '../../src/state/memory-dedup-store.js';
import { RedisDedupStore } from '../../src/state/redis-dedup-store.js';
import { RedisConnection } from '../../src/state/redis.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { dropPrefix, testRedis, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('dedup-store');
const conn = testRedis(prefix);
afterAll(async () => {
  await dropPrefix(conn, prefix);
  await conn.close();
});

const stores: [string, () => DedupStore][] = [
  ['memory', () => new MemoryDedupStore({ maxEntries: 1000, maxBytes: 1 << 20, onCap: () => undefined })],
  ['redis', () => new RedisDedupStore(conn, silentLogger())],
];

describe.each(stores)('%s dedup store', (_kind, make) => {
  it('recalls what it remembered, per device and exchange, until the time-to-live ends', async () => {
    const s = make();
    const now = Date.now();
    await s.remember('dev-a', 'k1', 'id-a1', 400, now);
    await s.remember('dev-b', 'k1', 'id-b1', 400, now);
    expect(await s.recall('dev-a', 'k1', now + 10)).toBe('id-a1');
    expect(await s.recall('dev-b', 'k1', now + 10)).toBe('id-b1');
    expect(await s.recall('dev-a', 'k2', now + 10)).toBeUndefined();
    expect(await s.recall('dev-c', 'k1', now + 10)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 450));
    expect(await s.recall('dev-a', 'k1', Date.now())).toBeUndefined();
    expect(s.outcomes.get('remembered')).toBe(2);
    expect(s.outcomes.get('recalled')).toBe(2);
    expect(s.outcomes.get('missed')).toBe(3);
    await s.close();
  });
});

describe('redis dedup store', () => {
  it('keeps one key per record, hash-tagged by device, expiring with the record', async () => {
    const s = new RedisDedupStore(conn, silentLogger());
    await s.remember('meter-7', 'abc', 'id-7', 60_000, Date.now());
    const key = `${prefix}{meter-7}:up:abc`;
    expect(await conn.client.get(key)).toBe('id-7');
    const ttl = await conn.client.pttl(key);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('a store that cannot be reached knows nothing, counts the failures and never throws', async () => {
    const down = new RedisConnection(
      { url: 'redis://127.0.0.1:1', keyPrefix: prefix, commandTimeoutMs: 100 },
      silentLogger(),
    );
    try {
      const s = new RedisDedupStore(down, silentLogger());
      await s.remember('meter-8', 'abc', 'id-8', 60_000, Date.now());
      expect(await s.recall('meter-8', 'abc', Date.now())).toBeUndefined();
      expect(s.outcomes.get('failed')).toBe(2);
    } finally {
      down.client.disconnect();
    }
  });
});

describe('memory dedup store', () => {
  it('is capped in entries and bytes, dropping the oldest records and reporting it', async () => {
    let evicted = 0;
    const s = new MemoryDedupStore({ maxEntries: 3, maxBytes: 1 << 20, onCap: (n) => (evicted += n) });
    const now = Date.now();
    for (let i = 0; i < 5; i++) await s.remember('dev', `k${i}`, `id${i}`, 60_000, now);
    expect(s.size).toBe(3);
    expect(evicted).toBe(2);
    expect(await s.recall('dev', 'k0', now)).toBeUndefined();
    expect(await s.recall('dev', 'k4', now)).toBe('id4');

    const small = new MemoryDedupStore({ maxEntries: 1000, maxBytes: 600, onCap: (n) => (evicted += n) });
    for (let i = 0; i < 10; i++) await small.remember('dev', `k${i}`, `id${i}`, 60_000, now);
    expect(small.byteSize).toBeLessThanOrEqual(600);
    expect(small.size).toBeGreaterThan(0);
    expect(await small.recall('dev', 'k9', now)).toBe('id9');
  });

  it('remembering an exchange again replaces its record', async () => {
    const s = new MemoryDedupStore({ maxEntries: 10, maxBytes: 1 << 20, onCap: () => undefined });
    const now = Date.now();
    await s.remember('dev', 'k', 'first', 60_000, now);
    const bytes = s.byteSize;
    await s.remember('dev', 'k', 'other', 60_000, now);
    expect(s.size).toBe(1);
    expect(s.byteSize).toBe(bytes);
    expect(await s.recall('dev', 'k', now)).toBe('other');
  });
});

describe('redis dedup store on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let clustered: RedisConnection;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    clustered = new RedisConnection(
      { url: cluster.urls[0], keyPrefix: 'cellgate:', commandTimeoutMs: 2000, cluster: true },
      silentLogger(),
    );
  });
  afterAll(async () => {
    await clustered?.close();
    await cluster?.stop();
  });

  it('keeps each device’s records in its device’s slot, spread over the masters', async () => {
    const s = new RedisDedupStore(clustered, silentLogger());
    const devices = Array.from({ length: 30 }, (_, i) => `meter-${i}`);
    for (const d of devices) await s.remember(d, 'k1', `id-${d}`, 60_000, Date.now());
    for (const d of devices) expect(await s.recall(d, 'k1', Date.now())).toBe(`id-${d}`);
    expect(s.outcomes.get('failed')).toBeUndefined();
    const slot = async (key: string) => Number((await cluster.cli(['cluster', 'keyslot', key])).trim());
    for (const d of devices.slice(0, 3)) expect(await slot(`cellgate:{${d}}:up:k1`)).toBe(await slot(d));
    const perNode = await Promise.all(
      cluster.nodes.map(async (n) => Number((await cluster.cli(['dbsize'], n)).trim())),
    );
    expect(perNode.reduce((a, b) => a + b)).toBe(devices.length);
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThan(1);
  });
});
