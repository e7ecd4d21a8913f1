/**
 * The session store contract, for the in-process and the Redis store alike: creation (idempotent for its
 * creator, refused for a Connection ID another replica's session holds), claims (fence, fresh block, replay
 * floor, undo), leases and checkpoints under a fence, removal by session and by device, and the compact,
 * sealed Redis encoding.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/ops/logger.js';
import { MemorySessionStore } from '../../src/state/memory-session-store.js';
import { RedisConnection } from '../../src/state/redis.js';
import { RedisSessionStore } from '../../src/state/redis-session-store.js';
import { decodeSession, encodeSession } from '../../src/state/session-codec.js';
import { Keyring } from '../../src/state/sealing.js';
import type { SessionStore, SharedSession } from '../../src/state/session-store.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const B = 100;
const prefix = uniquePrefix('session-store');
const conn = new RedisConnection(
  { url: TEST_REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 },
  silentLogger(),
);
const ring = new Keyring([[3, randomBytes(32)]]);

afterAll(async () => {
  await dropPrefix(conn, prefix);
  await conn.close();
});

function session(id: string, deviceId = 'dev-a'): SharedSession {
  return {
    id,
    deviceId,
    pskIdentity: `psk-${deviceId}`,
    credentialKind: 'psk',
    fingerprint: '',
    suite: 0xc0a8,
    peerCid: 'pc',
    sendLimit: 1200,
    keys: randomBytes(52),
    credential: 0xc0ffee01,
  };
}

const stores: [string, () => SessionStore][] = [
  ['memory', () => new MemorySessionStore({ idleTimeoutMs: 60_000, blockSize: B })],
  [
    'redis',
    () => new RedisSessionStore(conn, ring, { idleTimeoutMs: 60_000, timeoutMs: 2000, blockSize: B }),
  ],
];

describe.each(stores)('session store (%s)', (_name, make) => {
  it('creates once per creator, and tells a Connection ID taken by another replica’s session', async () => {
    const st = make();
    const s = session('\x01\x02\x03\x04\x05\x06');
    expect(await st.create(s, 3, -1, 77)).toEqual({ fence: 1, start: 0, end: 3 + B });
    // A retry (the first answer was lost) by the same creator: same fence, the block only grows.
    expect(await st.create(s, 10, 4, 77)).toEqual({ fence: 1, start: 0, end: 10 + B });
    expect(await st.create(session(s.id, 'dev-other'), 0, -1, 78)).toBe('taken');
    const claim = await st.claim(s.id, 5);
    expect(claim).toMatchObject({ lease: { fence: 2, start: 10 + B, end: 10 + 2 * B } });
    expect(await st.create(s, 20, 4, 77)).toBe('moved');
  });

  it('hands out every write block once, and only to the current fence', async () => {
    const st = make();
    const s = session('\x11\x12\x13\x14\x15\x16');
    await st.create(s, 0, -1, 1);
    const l1 = await st.lease(s.id, 1);
    const c = await st.claim(s.id, 9);
    if (typeof c === 'string') throw new Error(c);
    expect(c.session).toMatchObject({
      deviceId: 'dev-a',
      pskIdentity: 'psk-dev-a',
      suite: 0xc0a8,
      peerCid: 'pc',
    });
    expect(c.session.keys.equals(s.keys)).toBe(true);
    expect(await st.lease(s.id, 1)).toBeUndefined();
    expect(await st.checkpoint(s.id, 'dev-a', 1, 50)).toBe(false);
    const l2 = await st.lease(s.id, 2);
    const ranges = [
      [0, B],
      [l1!.start, l1!.end],
      [c.lease.start, c.lease.end],
      [l2!.start, l2!.end],
    ];
    for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
  });

  it('refuses claims at or below the replay floor, raised by claims and checkpoints; undoes a claim', async () => {
    const st = make();
    const s = session('\x21\x22\x23\x24\x25\x26');
    await st.create(s, 0, 7, 1);
    expect(await st.claim(s.id, 7)).toBe('replay');
    const c = await st.claim(s.id, 8);
    if (typeof c === 'string') throw new Error(c);
    expect(await st.claim(s.id, 8)).toBe('replay');
    expect(await st.checkpoint(s.id, 'dev-a', c.lease.fence, 2 ** 40)).toBe(true);
    expect(await st.claim(s.id, 2 ** 40)).toBe('replay');
    const c2 = await st.claim(s.id, 2 ** 40 + 1);
    if (typeof c2 === 'string') throw new Error(c2);
    // The record behind c2 did not authenticate: the session is back as it was, c's owner keeps it.
    await st.unclaim(s.id, c2);
    expect(await st.checkpoint(s.id, 'dev-a', c.lease.fence, 2 ** 40)).toBe(true);
    expect(await st.claim(s.id, 2 ** 40)).toBe('replay');
    expect(await st.claim('\x00\x00\x00\x00\x00\x00', 1)).toBe('unknown');
  });

  it('removes sessions by id and by device, and a new session of a device replaces its earlier one', async () => {
    const st = make();
    const heard: string[] = [];
    st.onRevoked((id, fence, why) => heard.push(`${id.charCodeAt(0)}/${fence}/${why}`));
    if (st instanceof RedisSessionStore) await st.subscribed;
    const a = session('\x31\x00\x00\x00\x00\x01', 'dev-r');
    const b = session('\x32\x00\x00\x00\x00\x02', 'dev-r');
    await st.create(a, 0, -1, 1);
    await st.create(b, 0, -1, 2);
    expect(await st.claim(a.id, 1)).toBe('unknown');
    await st.removeDevice('dev-r');
    expect(await st.claim(b.id, 1)).toBe('unknown');
    // Ending a device's session for a credential change spares one made with the current credential.
    const k = session('\x34\x00\x00\x00\x00\x04', 'dev-k');
    await st.create(k, 0, -1, 4);
    await st.removeDevice('dev-k', 0xc0ffee01);
    expect(await st.claim(k.id, 1)).not.toBe('unknown');
    await st.removeDevice('dev-k', 0x12345678);
    expect(await st.claim(k.id, 2)).toBe('unknown');
    const c = session('\x33\x00\x00\x00\x00\x03', 'dev-s');
    await st.create(c, 0, -1, 3);
    await st.remove(c.id, 'dev-s');
    expect(await st.claim(c.id, 1)).toBe('unknown');
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toEqual(['49/0/ended', '50/0/ended', '52/0/ended', '51/0/ended']);
  });
});

describe('session encoding', () => {
  it('round-trips, and refuses damaged or foreign bytes', () => {
    const s = session('\xaa\xbb\xcc\xdd\xee\xff', 'dévice-ü');
    const b = encodeSession(s);
    expect(b.length).toBeLessThan(100);
    expect(decodeSession(s.id, b)).toEqual(s);
    expect(decodeSession(s.id, b.subarray(0, b.length - 1))).toBeUndefined();
    expect(decodeSession(s.id, Buffer.concat([b, Buffer.from([0])]))).toBeUndefined();
    const v3 = Buffer.from(b);
    v3[0] = 3;
    expect(decodeSession(s.id, v3)).toBeUndefined();
  });

  it('keeps a certificate session’s credential kind and fingerprint (version 2), a PSK one as version 1', () => {
    const psk = session('\x01\x02\x03\x04\x05\x06');
    expect(encodeSession(psk)[0]).toBe(1);
    for (const credentialKind of ['x509', 'rpk'] as const) {
      const s = {
        ...session('\x11\x12\x13\x14\x15\x16', 'meter-1'),
        pskIdentity: '',
        credentialKind,
        fingerprint: 'ab'.repeat(32),
      };
      const b = encodeSession(s);
      expect(b[0]).toBe(2);
      expect(b.length).toBeLessThan(150);
      expect(decodeSession(s.id, b)).toEqual(s);
      expect(decodeSession(s.id, b.subarray(0, b.length - 1))).toBeUndefined();
      const bad = Buffer.from(b);
      bad[b.length - 34] = 9; // no such credential kind
      expect(decodeSession(s.id, bad)).toBeUndefined();
    }
  });

  it('stores a session sealed to its id: copied onto another id, it does not open', async () => {
    const st = new RedisSessionStore(conn, ring, { idleTimeoutMs: 60_000, timeoutMs: 2000, blockSize: B });
    const s = session('\x41\x42\x43\x44\x45\x46');
    await st.create(s, 0, -1, 1);
    const other = '\x51\x52\x53\x54\x55\x56';
    await conn.client.copy(st.sessionKey(s.id), st.sessionKey(other));
    await expect(st.claim(other, 5)).rejects.toThrow(/does not open with the keyring/);
    // The failed claim was undone: the copy is as it was.
    const value = (await conn.client.getBuffer(st.sessionKey(other)))!;
    expect(value.readUInt32BE(0)).toBe(1);
    expect(await conn.client.pttl(st.sessionKey(s.id))).toBeGreaterThan(59_000);
  });
});
