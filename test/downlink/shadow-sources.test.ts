/** The memory and redis shadow sources: the same behaviour, and Redis shared by replicas. */
import { rejection } from '../support/api-error.js';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryShadowSource } from '../../src/downlink/memory-shadows.js';
import { RedisShadowSource } from '../../src/downlink/redis-shadows.js';
import { type ShadowUpdate } from '../../src/downlink/shadow-document.js';
import type { ShadowSource } from '../../src/downlink/shadow-source.js';
import type { RedisConnection } from '../../src/state/redis.js';
import { dropPrefix, testRedis, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('shadows');
const connections: RedisConnection[] = [];
function redisSource(): RedisShadowSource {
  const r = testRedis(prefix);
  connections.push(r);
  return new RedisShadowSource(r, 'downlink', 8192);
}

afterAll(async () => {
  if (connections[0]) await dropPrefix(connections[0], prefix);
  for (const c of connections) await c.close();
});

const desired = (d: Record<string, unknown>, extra: Partial<ShadowUpdate> = {}): ShadowUpdate =>
  ({ state: { desired: d }, ...extra }) as ShadowUpdate;

let n = 0;
const thing = () => `shadow-thing-${++n}`;

describe.each([
  [
    'memory',
    () =>
      new MemoryShadowSource({ maxThings: 100, maxBytes: 1 << 20, maxDocumentBytes: 8192, onCap: () => {} }),
  ],
  ['redis', redisSource],
] as [string, () => ShadowSource][])('%s shadow source', (_name, make) => {
  const source = make();

  it('creates, merges and versions a shadow; 409 on a stale version', async () => {
    const t = thing();
    expect(await source.get(t)).toBeUndefined();
    const a = await source.update(t, desired({ interval: 60, mode: 'eco' }, { clientToken: 'c1' }));
    expect(a).toMatchObject({
      version: 1,
      clientToken: 'c1',
      state: { desired: { interval: 60, mode: 'eco' } },
    });
    await source.update(t, { state: { reported: { interval: 60 } }, version: 1 });
    const s = await source.get(t);
    expect(s).toMatchObject({
      version: 2,
      desired: { interval: 60, mode: 'eco' },
      reported: { interval: 60 },
    });
    const e = await rejection(source.update(t, desired({ mode: 'x' }, { version: 1 })));
    expect([e.status, e.code]).toEqual([409, 'ConflictException']);
    expect((await source.get(t))?.desired).toEqual({ interval: 60, mode: 'eco' });
  });

  it('delete: 404 when there is none; the version carries on', async () => {
    const t = thing();
    expect((await rejection(source.delete(t))).status).toBe(404);
    await source.update(t, desired({ a: 1 }));
    await source.update(t, desired({ a: 2 }));
    expect(await source.delete(t)).toMatchObject({ version: 2 });
    expect(await source.get(t)).toBeUndefined();
    expect((await source.update(t, desired({ a: 3 }))).version).toBe(3);
  });

  it('refuses a document over the size limit', async () => {
    const e = await rejection(source.update(thing(), desired({ big: 'x'.repeat(9000) })));
    expect(e.status).toBe(413);
  });
});

describe('redis shadow source across replicas', () => {
  it('concurrent updates from two replicas all apply, each with its own version', async () => {
    const a = redisSource();
    const b = redisSource();
    const t = thing();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).update(t, desired({ [`k${i}`]: i }))),
    );
    expect(answers.map((x) => x.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const s = await a.get(t);
    expect(Object.keys(s?.desired ?? {}).length).toBe(10);
    expect(s?.version).toBe(10);
  });

  it('announces changes to every replica', async () => {
    const a = redisSource();
    const b = redisSource();
    const heard: string[] = [];
    b.onChange((x) => heard.push(x));
    await connections[connections.length - 1].subscribed;
    const t = thing();
    await a.update(t, desired({ x: 1 }));
    await a.delete(t);
    await expect.poll(() => heard.filter((x) => x === t).length).toBe(2);
  });
});

describe('memory shadow source caps', () => {
  it('refuses new shadows past maxThings and bytes past maxBytes, keeping what it has', async () => {
    const caps: string[] = [];
    const m = new MemoryShadowSource({
      maxThings: 2,
      maxBytes: 300,
      maxDocumentBytes: 8192,
      onCap: (c) => caps.push(c),
    });
    await m.update('a', desired({ v: 1 }));
    await m.update('b', desired({ v: 1 }));
    expect((await rejection(m.update('c', desired({ v: 1 })))).status).toBe(503);
    expect((await rejection(m.update('a', desired({ v: 'x'.repeat(400) })))).status).toBe(503);
    expect(caps).toEqual(['downlink_memory_shadows', 'downlink_memory_shadow_bytes']);
    expect((await m.get('a'))?.desired).toEqual({ v: 1 });
    expect(m.size).toBe(2);
    await m.delete('a');
    await m.update('c', desired({ v: 1 }));
    expect(m.size).toBe(2);
  });
});
