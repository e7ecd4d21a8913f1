/**
 * DTLS sessions shared by replicas through the session store, against the in-process store, the shared
 * test Redis and a private 3-node Redis Cluster: a session moves to whichever replica a record reaches,
 * without a handshake, and the rules hold — no nonce reuse (leased write blocks, fencing), no replay across
 * replicas, the address moves only on a newer authenticated record, secrets sealed, removed devices lose
 * their sessions everywhere, idle sessions expire, the local table is a bounded cache.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/ops/logger.js';
import { MemorySessionStore } from '../../src/state/memory-session-store.js';
import { RedisConnection } from '../../src/state/redis.js';
import { RedisSessionStore } from '../../src/state/redis-session-store.js';
import { Keyring } from '../../src/state/sealing.js';
import type { SessionStore } from '../../src/state/session-store.js';
import { SLOT_BYTES } from '../../src/dtls/server/key-store.js';
import { pemCertificates } from '../../src/dtls/certificates/peer-verifier.js';
import { TestPki } from '../support/certificates.js';
import { device, until } from '../support/dtls-harness.js';
import { Replicas } from '../support/dtls-replicas.js';
import { credentialTag } from '../../src/dtls/server/sharing.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const IDLE_MS = 60_000;
const BLOCK = 64;
const keyring = new Keyring([[1, randomBytes(32)]]);

interface Backend {
  name: string;
  /** Store views for `n` replicas (they share one store). */
  stores(n: number, opts?: { idleMs?: number; timeoutMs?: number; url?: string }): Promise<SessionStore[]>;
  /** Every key and value the store holds (Redis: under the test's prefix). */
  dump?(): Promise<Buffer[]>;
  memoryUsage?(store: SessionStore, id: string, deviceId: string): Promise<number>;
  cleanup(): Promise<void>;
}

function memoryBackend(): Backend {
  return {
    name: 'memory',
    stores: (n, opts = {}) => {
      const m = new MemorySessionStore({ idleTimeoutMs: opts.idleMs ?? IDLE_MS, blockSize: BLOCK });
      return Promise.resolve(Array.from({ length: n }, () => m));
    },
    cleanup: () => Promise.resolve(),
  };
}

function redisBackend(name: string, urls: () => string[], cluster: boolean): Backend {
  const conns: RedisConnection[] = [];
  let prefix = uniquePrefix('dtls-sharing');
  const open = (url: string, timeoutMs = 1000) => {
    const c = new RedisConnection(
      { url, keyPrefix: prefix, commandTimeoutMs: timeoutMs, cluster },
      silentLogger(),
    );
    conns.push(c);
    return c;
  };
  return {
    name,
    async stores(n, opts = {}) {
      const out: RedisSessionStore[] = [];
      for (let i = 0; i < n; i++) {
        const conn = open(opts.url ?? urls()[i % urls().length], opts.timeoutMs);
        const store = new RedisSessionStore(conn, keyring, {
          idleTimeoutMs: opts.idleMs ?? IDLE_MS,
          timeoutMs: opts.timeoutMs ?? 1000,
          blockSize: BLOCK,
        });
        out.push(store);
      }
      return out;
    },
    async dump() {
      const values: Buffer[] = [];
      const conn = open(urls()[0]);
      await conn.waitReady(5000);
      const client = conn.client;
      const nodes = 'nodes' in client ? client.nodes('master') : [client];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scanBuffer(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
          cursor = next.toString();
          for (const k of keys) {
            values.push(k);
            const type = await node.type(k);
            if (type === 'hash') for (const v of Object.values(await node.hgetallBuffer(k))) values.push(v);
            if (type === 'string') values.push((await node.getBuffer(k)) as Buffer);
          }
        } while (cursor !== '0');
      }
      return values;
    },
    async memoryUsage(store, id, deviceId) {
      const s = store as RedisSessionStore;
      const client = conns[0].client;
      const a = (await client.call('MEMORY', 'USAGE', s.sessionKey(id), 'SAMPLES', '0')) as number;
      const b = (await client.call('MEMORY', 'USAGE', s.deviceKey(deviceId), 'SAMPLES', '0')) as number;
      return a + b;
    },
    async cleanup() {
      if (!cluster) await dropPrefix(open(urls()[0]), prefix);
      for (const c of conns.splice(0)) await c.close();
      prefix = uniquePrefix('dtls-sharing');
    },
  };
}

let cluster: RedisCluster | undefined;
const backends: Backend[] = [
  memoryBackend(),
  redisBackend('redis', () => [TEST_REDIS_URL], false),
  redisBackend('redis cluster', () => cluster?.urls ?? [], true),
];

describe.each(backends)('DTLS session sharing ($name)', (backend) => {
  let fleet: Replicas | undefined;

  beforeAll(async () => {
    if (backend.name === 'redis cluster') cluster = await startRedisCluster();
  }, 30_000);
  afterAll(async () => {
    if (backend.name === 'redis cluster') await cluster?.stop();
  });
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
    await backend.cleanup();
  });

  async function start(n = 3, opts: Parameters<Backend['stores']>[1] = {}, maxSessions?: number) {
    const stores = await backend.stores(n, opts);
    fleet = new Replicas(stores, maxSessions ? { maxSessions } : {});
    // Revocations are heard once each replica listens.
    for (const s of stores) if (s instanceof RedisSessionStore) await s.subscribed;
    return fleet;
  }

  it('a session moves to the replica its record reaches and is answered there without a handshake', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    expect(await f.request(c, 'a')).toBe('r0:a');
    await f.stored(0);
    f.move(c, 1);
    expect(await f.request(c, 'b')).toBe('r1:b');
    await f.released(0);
    f.move(c, 2);
    expect(await f.request(c, 'c')).toBe('r2:c');
    await f.released(1);
    f.move(c, 0);
    expect(await f.request(c, 'd')).toBe('r0:d');
    expect(c.core.handshakes).toBe(1);
    expect(await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'ok' })).toBe(1);
    expect(await f.replicas[0].metric('cellgate_dtls_session_cache_total', { result: 'miss' })).toBe(1);
    // The replicas the session left drop their copies when they hear of the move.
    await until(
      async () =>
        (await f.replicas[1].metric('cellgate_dtls_sessions_revoked_total', { reason: 'moved' })) === 1,
    );
    expect(f.replicas.map((r) => r.delivered.length)).toEqual([2, 1, 1]);
    // Every replica names the peer the same (what deduplication and message ids hang off).
    const keys = new Set(f.replicas.flatMap((r) => r.delivered.map((d) => d.peer.key)));
    expect([...keys]).toEqual([`dtls:${Buffer.from(c.core.serverCid, 'latin1').toString('hex')}`]);
    expect(f.nonceReuse()).toEqual([]);
  });
  it('a device that has the server’s Finished has its session in the store: it can move at once', async () => {
    const f = await start();
    // Storing takes 50 ms: without the wait for it, the client would finish its handshake first.
    for (const store of new Set(f.replicas.map((r) => r.store))) {
      const create = store.create.bind(store);
      store.create = async (...args) => {
        await new Promise((r) => setTimeout(r, 50));
        return create(...args);
      };
    }
    const c = f.client('dev1', 0);
    await c.core.handshake();
    // Back at once from a new port at another replica, as after its replica was killed right after flight 6.
    f.move(c, 1);
    expect(await f.request(c, 'a')).toBe('r1:a');
    expect(c.core.handshakes).toBe(1);
    expect(await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'ok' })).toBe(1);
    expect(await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'unknown' })).toBe(0);
  });

  it('a certificate session moves with its device, credential kind and fingerprint (no certificate stored)', async () => {
    const pki = new TestPki();
    try {
      const server = pki.server();
      const meter = pki.device('meter', 'dev1');
      const stores = await backend.stores(2);
      fleet = new Replicas(
        stores,
        { certificate: { certFile: server.certFile, keyFile: server.keyFile }, trustAnchors: pki.caFile },
        [{ id: 'dev1', thing: 'dev1', ips: [], x509: { fingerprint: meter.fingerprint } }],
      );
      for (const st of stores) if (st instanceof RedisSessionStore) await st.subscribed;
      const f = fleet;
      const c = f.client('dev1', 0, {
        cipherSuites: [0xc0ae],
        certificate: { key: createPrivateKey(meter.key), chain: pemCertificates(meter.cert) },
      });
      await c.core.handshake();
      expect(await f.request(c, 'a')).toBe('r0:a');
      await f.stored(0);
      f.move(c, 1);
      expect(await f.request(c, 'b')).toBe('r1:b');
      expect(c.core.handshakes).toBe(1);
      expect(f.replicas[1].delivered[0].peer).toMatchObject({
        deviceId: 'dev1',
        credential: 'x509',
        fingerprint: meter.fingerprint,
      });
      if (backend.dump) {
        const der = pemCertificates(meter.cert)[0];
        for (const v of await backend.dump()) expect(v.includes(der.subarray(0, 64))).toBe(false);
      }
    } finally {
      pki.close();
    }
  });

  it('never writes two records with one nonce: moves, racing take-overs, a killed owner, renewed leases', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    // Many exchanges on one replica: write blocks (64 numbers here) are renewed in the background.
    // (A record finding its block used up before the next lease arrived is not sent; the device retransmits.)
    for (let i = 0; i < 150; i++) expect(await f.request(c, `n${i}`, 3000, 200)).toBe(`r0:n${i}`);
    // Moves back and forth, some before the previous owner heard of the last move.
    for (let i = 0; i < 12; i++) {
      f.move(c, (i * 2 + 1) % 3);
      expect(await f.request(c, `m${i}`, 3000, 200)).toBe(`r${(i * 2 + 1) % 3}:m${i}`);
    }
    // The owner is killed (no flush, no close): the next replica starts from a fresh block.
    const owner = c.to;
    f.move(c, (owner + 1) % 3);
    expect(await f.request(c, 'after-kill', 3000, 200)).toBe(`r${(owner + 1) % 3}:after-kill`);
    expect(c.core.handshakes).toBe(1);
    expect(f.nonceReuse()).toEqual([]);
  });

  it('two replicas racing for one session, and the old owner still writing: no nonce reuse, no record twice', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    expect(await f.request(c, 'first')).toBe('r0:first');
    await f.stored(0);
    for (let round = 0; round < 5; round++) {
      // Three records of the session reach three replicas in the same instant (new flows for two of them).
      const [x, y, z] = [`x${round}`, `y${round}`, `z${round}`].map((t) => c.core.record(Buffer.from(t)));
      f.inject(1, x, '10.9.0.1', 50_000 + round);
      f.inject(2, y, '10.9.0.2', 50_000 + round);
      f.inject(0, z, '10.9.0.3', 50_000 + round);
      await new Promise((r) => setTimeout(r, 50));
    }
    const texts = f.replicas.flatMap((r) => r.delivered.map((d) => d.data.toString()));
    expect(new Set(texts).size).toBe(texts.length);
    expect(texts.length).toBeGreaterThan(5);
    expect(f.nonceReuse()).toEqual([]);
    // In the end one replica holds the session; the others heard they lost it.
    await until(() => f.replicas.filter((r) => r.server.table.byDevice('dev1')).length === 1);
  });

  /** Replicas whose views of the store are changed by `wrap` (a view with some calls replaced). */
  async function startWrapped(wrap: (store: SessionStore, replica: number) => Partial<SessionStore>) {
    const stores = await backend.stores(3);
    const views = stores.map((store, i) =>
      Object.assign(Object.create(store) as SessionStore, wrap(store, i)),
    );
    fleet = new Replicas(views, {});
    for (const s of stores) if (s instanceof RedisSessionStore) await s.subscribed;
    return fleet;
  }

  it('a claim answered after another replica announced a newer one is dropped: one holder, nothing delivered twice', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let claims = 0;
    const f = await startWrapped((store, i) =>
      i === 1
        ? {
            claim: async (id, seq) => {
              const answer = await store.claim(id, seq);
              claims++;
              await gate;
              return answer;
            },
          }
        : {},
    );
    const c = f.client('dev1', 0);
    await c.core.handshake();
    expect(await f.request(c, 'a')).toBe('r0:a');
    await f.stored(0);
    const [x, y] = ['x', 'y'].map((t) => c.core.record(Buffer.from(t)));
    // r1 claims for x (the store answers, the answer is late); r2 claims for the newer y and announces it.
    f.inject(1, x, '10.8.0.1', 8001);
    await until(() => claims === 1);
    f.inject(2, y, '10.8.0.2', 8002);
    await until(() => f.replicas[2].delivered.length === 1);
    await until(
      async () =>
        (await f.replicas[0].metric('cellgate_dtls_sessions_revoked_total', { reason: 'moved' })) === 1,
    );
    await new Promise((r) => setTimeout(r, 50));
    release();
    await until(
      async () =>
        (await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'superseded' })) === 1,
    );
    expect(f.replicas[1].delivered).toEqual([]);
    expect(f.replicas[1].server.table.byDevice('dev1')).toBeUndefined();
    expect(f.replicas.filter((r) => r.server.table.byDevice('dev1')).map((r) => r.index)).toEqual([2]);
    f.move(c, 2);
    expect(await f.request(c, 'z')).toBe('r2:z');
    expect(f.nonceReuse()).toEqual([]);
  });

  it('a replica that missed the announcement of a newer claim learns at its first checkpoint that it lost the session', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let checkpoints = 0;
    const f = await startWrapped((store, i) =>
      i === 1
        ? {
            // Deaf to announcements (pub/sub may lose one), and its checkpoints wait for the newer claim.
            onRevoked: () => undefined,
            checkpoint: async (...args) => {
              checkpoints++;
              await gate;
              return store.checkpoint(...args);
            },
          }
        : {},
    );
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    const [x, y] = ['x', 'y'].map((t) => c.core.record(Buffer.from(t)));
    f.inject(1, x, '10.8.1.1', 8101);
    await until(() => f.replicas[1].delivered.length === 1);
    f.inject(2, y, '10.8.1.2', 8102);
    await until(() => f.replicas[2].delivered.length === 1);
    await until(() => checkpoints === 1);
    release();
    await until(
      async () =>
        (await f.replicas[1].metric('cellgate_dtls_sessions_revoked_total', { reason: 'lost' })) === 1,
    );
    expect(f.replicas.filter((r) => r.server.table.byDevice('dev1')).map((r) => r.index)).toEqual([2]);
  });

  it('never accepts a record twice: replays to the new owner and to a third replica are dropped', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    expect(await f.request(c, 'a')).toBe('r0:a');
    const ra = c.sent[c.sent.length - 1];
    await f.stored(0);
    f.move(c, 1);
    expect(await f.request(c, 'b')).toBe('r1:b');
    const rb = c.sent[c.sent.length - 1];
    const delivered = () => f.replicas.map((r) => r.delivered.length);
    const before = delivered();
    // A replay from a new source port after the take-over, to the new owner…
    f.inject(1, ra, '10.7.0.1', 7001);
    f.inject(1, rb, '10.7.0.1', 7002);
    // …and to a replica that must look the session up in the store.
    f.inject(2, ra, '10.7.0.2', 7003);
    await until(
      async () => (await f.replicas[2].metric('cellgate_dtls_takeovers_total', { outcome: 'replay' })) === 1,
    );
    f.inject(2, rb, '10.7.0.2', 7004);
    await until(
      async () => (await f.replicas[2].metric('cellgate_dtls_takeovers_total', { outcome: 'replay' })) === 2,
    );
    expect(await f.replicas[1].metric('cellgate_dtls_records_dropped_total', { reason: 'replay' })).toBe(2);
    // Records the owner accepted after the take-over reach the store at its next checkpoint (≤ 1 s).
    expect(await f.request(c, 'c')).toBe('r1:c');
    const rc = c.sent[c.sent.length - 1];
    await new Promise((r) => setTimeout(r, 2100));
    f.inject(2, rc, '10.7.0.2', 7005);
    await until(
      async () => (await f.replicas[2].metric('cellgate_dtls_takeovers_total', { outcome: 'replay' })) === 3,
    );
    expect(delivered()).toEqual([before[0], before[1] + 1, 0]);
    // The device itself carries on.
    expect(await f.request(c, 'd')).toBe('r1:d');
  });

  it('moves the peer address only on a newer authenticated record (RFC 9146 §6)', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    const [r5, r6, r7] = ['5', '6', '7'].map((t) => c.core.record(Buffer.from(t)));
    // The take-over binds the session to where its record came from.
    f.inject(1, r6, '10.6.0.1', 6001);
    await until(() => f.replicas[1].delivered.length === 1);
    const s = f.replicas[1].server.table.byDevice('dev1')!;
    expect([s.address, s.port]).toEqual(['10.6.0.1', 6001]);
    // Older than the take-over record: refused, wherever it comes from; the address stays.
    f.inject(1, r5, '10.6.0.2', 6002);
    f.inject(1, r6, '10.6.0.3', 6003);
    expect([s.address, s.port]).toEqual(['10.6.0.1', 6001]);
    // A forged record from elsewhere moves nothing.
    const forged = Buffer.from(r7);
    forged[forged.length - 1] ^= 0xff;
    f.inject(1, forged, '10.6.0.4', 6004);
    expect([s.address, s.port]).toEqual(['10.6.0.1', 6001]);
    // A newer authenticated record does.
    f.inject(1, r7, '10.6.0.5', 6005);
    await until(() => f.replicas[1].delivered.length === 2);
    expect([s.address, s.port]).toEqual(['10.6.0.5', 6005]);
    expect(f.replicas[1].delivered.map((d) => d.data.toString())).toEqual(['6', '7']);
  });

  it('holds a few records of a session while its claim is in flight, and counts what a cap turns away', async () => {
    const f = await start(2);
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    const records = Array.from({ length: 6 }, (_, i) => c.core.record(Buffer.from(`burst${i}`)));
    for (const r of records) f.inject(1, r, '10.4.0.1', 4001);
    await until(() => f.replicas[1].delivered.length === 4);
    expect(f.replicas[1].delivered.map((d) => d.data.toString())).toEqual([
      'burst0',
      'burst1',
      'burst2',
      'burst3',
    ]);
    expect(await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'cap' })).toBe(2);
    expect(await f.replicas[1].metric('cellgate_cap_hits_total', { cap: 'dtls_takeover_records' })).toBe(2);
  });

  it('a record that does not authenticate undoes its claim: the owner keeps the session', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    const forged = c.core.record(Buffer.from('evil'));
    forged[forged.length - 2] ^= 0x55;
    f.inject(1, forged, '10.5.0.1', 5001);
    await until(
      async () => (await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'bad_mac' })) === 1,
    );
    expect(f.replicas[1].server.table.byDevice('dev1')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(await f.replicas[0].metric('cellgate_dtls_sessions_revoked_total', { reason: 'moved' })).toBe(0);
    expect(await f.request(c, 'still')).toBe('r0:still');
    // The owner's fence is the session's again: its checkpoints and leases go through.
    await new Promise((r) => setTimeout(r, 1200));
    expect(await f.replicas[0].metric('cellgate_dtls_sessions_revoked_total', { reason: 'lost' })).toBe(0);
    expect(f.replicas[0].server.table.byDevice('dev1')).toBeDefined();
  });

  it('a removed or re-keyed device loses its sessions on every replica', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    f.move(c, 1);
    expect(await f.request(c, 'b')).toBe('r1:b');
    await f.released(0);
    // Replica 2 reloads its device file and finds dev1 removed (every replica does; one is enough).
    f.replicas[2].server.endSessionsOf('dev1');
    await f.released(1);
    expect(await f.replicas[1].metric('cellgate_dtls_sessions_revoked_total', { reason: 'ended' })).toBe(1);
    for (const to of [0, 1, 2]) {
      f.move(c, to);
      await expect(f.request(c, `x${to}`, 300)).rejects.toThrow(/no reply/);
    }
    // A new handshake of a device ends its earlier session on the replica holding it.
    const c2 = f.client('dev2', 0);
    await c2.core.handshake();
    await f.stored(0, 'dev2');
    f.move(c2, 1);
    expect(await f.request(c2, 'y')).toBe('r1:y');
    const again = f.client('dev2', 2);
    await again.core.handshake();
    await f.released(1, 'dev2');
    f.move(c2, 0);
    await expect(f.request(c2, 'old', 300)).rejects.toThrow(/no reply/);
    expect(await f.request(again, 'new')).toBe('r2:new');
  });

  it('a re-keyed device: a replica that reloads late spares the session made with the new key', async () => {
    const f = await start();
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    f.move(c, 1);
    expect(await f.request(c, 'old key')).toBe('r1:old key');
    // The device file gives dev1 a new key; replica 0 reloads first and ends the session everywhere.
    f.registry.replace([device('dev1', 'new-key'), device('dev2'), device('dev3')]);
    const current = credentialTag(Buffer.from('new-key'));
    f.replicas[0].server.endSessionsOf('dev1', current);
    await f.released(1);
    // The device handshakes again, with its new key, on replica 2.
    const fresh = f.client('dev1', 2, { key: Buffer.from('new-key') });
    await fresh.core.handshake();
    await f.stored(2);
    // Replica 1 reloads a while later: the new session stays, on replica 2 and in the store.
    f.replicas[1].server.endSessionsOf('dev1', current);
    await new Promise((r) => setTimeout(r, 100));
    expect(await f.request(fresh, 'new key')).toBe('r2:new key');
    f.move(fresh, 1);
    expect(await f.request(fresh, 'moved')).toBe('r1:moved');
    expect(fresh.core.handshakes).toBe(1);
  });

  it('forgets sessions idle for dtls.idleTimeoutMs', async () => {
    const f = await start(2, { idleMs: 400 });
    const c = f.client('dev1', 0);
    await c.core.handshake();
    await f.stored(0);
    await new Promise((r) => setTimeout(r, 700));
    f.move(c, 1);
    await expect(f.request(c, 'late', 300)).rejects.toThrow(/no reply/);
    expect(await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'unknown' })).toBe(1);
  });

  it('keeps a bounded local table in front of the store', async () => {
    const f = await start(2, {}, 1);
    const c1 = f.client('dev1', 0);
    await c1.core.handshake();
    await f.stored(0, 'dev1');
    const c2 = f.client('dev2', 0);
    await c2.core.handshake();
    await f.stored(0, 'dev2');
    // dev1 made room for dev2 here, but lives on in the store: it comes back without a handshake.
    expect(f.replicas[0].server.table.byDevice('dev1')).toBeUndefined();
    expect(await f.request(c1, 'back')).toBe('r0:back');
    expect(c1.core.handshakes).toBe(1);
    expect(f.replicas[0].server.sessionCount).toBe(1);
    expect(await f.replicas[0].metric('cellgate_dtls_session_cache_total', { result: 'miss' })).toBe(1);
    expect(f.nonceReuse()).toEqual([]);
  });

  // Only the Redis stores have a keyspace to scan and bytes to count; the in-process store has neither.
  if (backend.dump)
    it('keeps no session key bytes in the clear, and little per idle session', async () => {
      const f = await start(2);
      const c = f.client('dev1', 0);
      await c.core.handshake();
      await f.stored(0);
      f.move(c, 1);
      expect(await f.request(c, 'b')).toBe('r1:b');
      const s = f.replicas[1].server.table.byDevice('dev1')!;
      const keys = f.replicas[1].server.keys;
      const at = keys.offset(s.keySlot);
      const secret = Buffer.from(keys.slab(s.keySlot).subarray(at, at + SLOT_BYTES));
      const psk = Buffer.from('key-of-dev1');
      const values = await backend.dump!();
      expect(values.length).toBeGreaterThanOrEqual(4);
      for (const v of values) {
        expect(v.includes(psk)).toBe(false);
        for (let i = 0; i + 8 <= secret.length; i += 4)
          expect(v.includes(secret.subarray(i, i + 8))).toBe(false);
      }
      const bytes = await backend.memoryUsage!(f.replicas[1].store, s.cid, 'dev1');
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThanOrEqual(512);
    });

  // The outage is played by cutting a proxy in front of the standalone Redis.
  if (backend.name === 'redis')
    it('when the store is down, sessions held keep working and a take-over drops its datagram (counted)', async () => {
      const proxy = await startTcpProxy(6379);
      try {
        const f = await start(3, { url: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 200 });
        const c = f.client('dev1', 0);
        await c.core.handshake();
        await f.stored(0);
        proxy.cut();
        for (let i = 0; i < 5; i++) expect(await f.request(c, `held${i}`)).toBe(`r0:held${i}`);
        // A new handshake still completes: its last flight waits for the store only until the call times out.
        const other = f.client('dev2', 0);
        await other.core.handshake();
        expect(await f.request(other, 'local')).toBe('r0:local');
        f.move(c, 1);
        await expect(f.request(c, 'moved', 600)).rejects.toThrow(/no reply/);
        expect(await f.replicas[1].metric('cellgate_dtls_takeovers_total', { outcome: 'store_error' })).toBe(
          1,
        );
        // Back: the next record is taken over at once (the device retransmits).
        proxy.restore();
        await until(async () => {
          try {
            return (await f.request(c, 'again', 300)) === 'r1:again';
          } catch {
            return false;
          }
        }, 5000);
        expect(c.core.handshakes).toBe(1);
        expect(f.nonceReuse()).toEqual([]);
        // The replicas subscribed again after the outage: replica 1 hears at once that the session moved on.
        f.move(c, 2);
        expect(await f.request(c, 'third', 2000, 300)).toBe('r2:third');
        await until(
          async () =>
            (await f.replicas[1].metric('cellgate_dtls_sessions_revoked_total', { reason: 'moved' })) === 1,
          5000,
        );
      } finally {
        await proxy.close();
      }
    });
});
