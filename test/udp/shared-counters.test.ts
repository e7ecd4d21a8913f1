/**
 * Frame counters in the shared store (Redis): two gateways see one counter per device, so a duplicate or a
 * replay sent to the other replica is dropped as well, and a gateway that restarts still knows the counters.
 * Also the Redis stores on their own: one claim wins when two race, a failed publish gives its claim back.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { freeUdpPorts, socatSend } from '../support/raw-peers.js';
import { dropPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { toBcd } from '../../src/udp/frame.js';
import { RedisFrameCounters } from '../../src/state/redis-frame-counters.js';
import { RedisRecentUplinks } from '../../src/state/redis-recent-uplinks.js';
import { RedisSimTable } from '../../src/state/redis-sim-table.js';
import type { RedisConnection } from '../../src/state/redis.js';

const IMEI = '356938035643809';
const RULE = { bits: 16, maxGap: 1000 } as const;
const KEY = randomBytes(32).toString('base64');

function frame(counter: number, payload: string): Buffer {
  const c = Buffer.alloc(2);
  c.writeUInt16BE(counter);
  return Buffer.concat([toBcd(IMEI, 8), c, Buffer.from(payload)]);
}

const prefix = uniquePrefix('udp-counters');
let conn: RedisConnection;
beforeAll(() => {
  conn = testRedis(prefix);
});
afterAll(async () => {
  await dropPrefix(conn, prefix);
  await conn.close();
});

async function replica(): Promise<TestGateway> {
  return startTestGateway({
    devices: [{ id: 'meter-1', imei: IMEI }],
    config: {
      udp: {
        port: (await freeUdpPorts(1))[0],
        identity: ['frame'],
        frame: { id: { offset: 0, length: 8 }, counter: { offset: 8, bytes: 2 } },
        reply: { ack: 'ac counter' },
      },
      state: {
        store: 'redis',
        encryptionKeyFile: 'state.key',
        redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
      },
    },
    files: { '../state.key': KEY },
  });
}

describe('frame counters shared by replicas and kept across a restart (Redis)', () => {
  it('drops on one replica what the other took, and after a restart', async () => {
    const a = await replica();
    let b = await replica();
    try {
      const send = (gw: TestGateway, f: Buffer) => socatSend(gw.ports.udp as number, f);
      expect((await send(a, frame(5, 'x'))).stdout.toString('hex')).toBe('ac0005');
      await a.recorder.waitFor(1);
      // The same uplink again, through the other replica: a duplicate, not published there.
      await send(b, frame(5, 'x'));
      expect((await send(b, frame(4, 'old'))).stdout.length).toBe(0);
      expect((await send(b, frame(6, 'y'))).stdout.toString('hex')).toBe('ac0006');
      await b.recorder.waitForExactly(1);
      expect(b.recorder.messages[0].envelope.frameCounter).toBe(6);
      // b restarts: the counter survives in the store.
      await b.stop();
      b = await replica();
      expect((await send(b, frame(6, 'y'))).stdout.length).toBe(0);
      expect((await send(b, frame(3, 'replayed'))).stdout.length).toBe(0);
      expect((await send(b, frame(7, 'z'))).stdout.toString('hex')).toBe('ac0007');
      await b.recorder.waitForExactly(1);
      await a.recorder.waitForExactly(1);
      const res = await fetch(`http://127.0.0.1:${b.ports.http}/devices/meter-1/frame-counter`);
      expect(await res.json()).toEqual({ deviceId: 'meter-1', counter: 7 });
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('Redis stores', () => {
  it('lets one of two racing claims of a counter win, and releases a claim only if it still holds', async () => {
    const store = new RedisFrameCounters(conn.client, prefix);
    const [x, y] = await Promise.all([
      store.claim('race', 1, 'h1', RULE),
      store.claim('race', 1, 'h1', RULE),
    ]);
    expect([x.verdict, y.verdict].sort()).toEqual(['duplicate', 'new']);
    const c2 = await store.claim('race', 2, 'h2', RULE);
    expect(c2).toEqual({ verdict: 'new', previous: '1:h1' });
    expect((await store.claim('race', 2, 'other', RULE)).verdict).toBe('replay');
    await store.release('race', 2, 'h2', c2.previous);
    expect(await store.get('race')).toBe(1);
    expect((await store.claim('race', 2, 'h2', RULE)).verdict).toBe('new');
    expect((await store.claim('race', 1500, 'h', RULE)).verdict).toBe('gap');
    expect(await store.reset('race')).toBe(true);
    expect((await store.claim('race', 9, 'h9', RULE)).verdict).toBe('new');
  });

  it('remembers uplink hashes for the window only', async () => {
    const store = new RedisRecentUplinks(conn.client, prefix);
    expect(await store.seen('d', 'h', 150)).toBe(false);
    expect(await store.seen('d', 'h', 150)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.seen('d', 'h', 150)).toBe(false);
    await store.forget('d', 'h');
    expect(await store.seen('d', 'h', 150)).toBe(false);
  });

  it('keeps the IP → SIM table within its cap, dropping the oldest session', async () => {
    let evicted = 0;
    const table = new RedisSimTable(conn.client, `${prefix}sims:`, 2, (n) => (evicted += n));
    await table.put('10.0.0.1', { imsi: '1', updatedAt: 1, sessionId: 'a' }, 60_000);
    await new Promise((r) => setTimeout(r, 5));
    await table.put('10.0.0.2', { imsi: '2', updatedAt: 2 }, 60_000);
    await new Promise((r) => setTimeout(r, 5));
    await table.put('10.0.0.3', { imsi: '3', updatedAt: 3 }, 60_000);
    expect(evicted).toBe(1);
    expect(await table.count()).toBe(2);
    expect(await table.get('10.0.0.1')).toBeUndefined();
    expect((await table.get('10.0.0.3'))?.imsi).toBe('3');
    expect(await table.remove('10.0.0.2', 'other-session')).toBe(true);
    await table.put('10.0.0.4', { imsi: '4', updatedAt: 4, sessionId: 's4' }, 60_000);
    expect(await table.remove('10.0.0.4', 'other-session')).toBe(false);
    expect(await table.remove('10.0.0.4', 's4')).toBe(true);
  });
});
