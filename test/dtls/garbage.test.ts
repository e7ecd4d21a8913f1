/**
 * Garbage on the DTLS port: random bytes, records with valid headers and junk bodies, mutated handshakes,
 * and handshake floods from many addresses. The server must never throw, never keep state for any of it
 * beyond its caps, and still serve a real client afterwards. (The parsers themselves are fuzzed by the targets
 * of test/fuzz.)
 */
import { createSocket } from 'node:dgram';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { HandshakeType } from '../../src/dtls/protocol/constants.js';
import { writeRecordHeader } from '../../src/dtls/protocol/record.js';
import { connectDtls, DtlsClientCore } from '../support/dtls-client.js';
import { device, DtlsHarness, startListener } from '../support/dtls-harness.js';
import { prng, randomBytes as seededBytes } from '../support/prng.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const rand = prng(20240601);
const randInt = (n: number): number => Math.floor(rand() * n);
const randomBytes = (n: number): Buffer => seededBytes(rand, n);

let h: DtlsHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Records a real client sends during a handshake and a little data, to mutate. */
async function capturedDatagrams(): Promise<Buffer[]> {
  const harness = new DtlsHarness();
  const out: Buffer[] = [];
  harness.drop = (dir, d) => {
    if (dir === 'to-server') out.push(d);
    return false;
  };
  const c = harness.client({ cid: Buffer.from([1]) });
  await c.handshake();
  c.write(Buffer.from('some data'));
  c.close();
  await harness.close();
  return out;
}

function mutate(d: Buffer): Buffer {
  const m = Buffer.from(d);
  switch (randInt(4)) {
    case 0:
      for (let i = 0, n = 1 + randInt(4); i < n; i++) m[randInt(m.length)] ^= 1 << randInt(8);
      return m;
    case 1:
      return m.subarray(0, randInt(m.length));
    case 2: {
      const at = randInt(m.length);
      return Buffer.concat([m.subarray(0, at), randomBytes(1 + randInt(16)), m.subarray(at)]);
    }
    default:
      // Lengths are where parsers go wrong: set a random 16-bit or 24-bit field to a large value.
      m.writeUInt16BE(randInt(65536), randInt(Math.max(1, m.length - 2)));
      return m;
  }
}

describe('garbage on the DTLS port', () => {
  it('survives random datagrams from many addresses and keeps no state', async () => {
    h = new DtlsHarness();
    for (let i = 0; i < 20_000; i++) {
      const d = randomBytes(randInt(300));
      if (i % 3 === 0 && d.length > 0) d[0] = 20 + randInt(6);
      if (i % 2 === 0 && d.length > 2) d[1] = 0xfe;
      h.inject(d, {
        address: `10.${randInt(256)}.${randInt(256)}.${randInt(256)}`,
        port: 1 + randInt(65535),
      });
    }
    expect(h.server.sessionCount).toBe(0);
    expect(h.server.handshakeCount).toBe(0);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'malformed' })).toBeGreaterThan(0);
  });

  it('survives records with valid headers and junk bodies of every type and epoch', async () => {
    h = new DtlsHarness({ connectionIdLength: 4 });
    const c = h.client();
    await c.handshake();
    h.echo = false;
    const at = { address: '10.0.0.1', port: 40000 };
    for (let i = 0; i < 20_000; i++) {
      const body = randomBytes(randInt(200));
      const type = [20, 21, 22, 23, 25, randInt(256)][randInt(6)];
      const cid = type === 25 ? randomBytes(4).toString('latin1') : '';
      const rec = Buffer.alloc(13 + cid.length + body.length);
      body.copy(rec, writeRecordHeader(rec, 0, type, 0xfefd, randInt(3), randInt(100), cid, body.length));
      h.inject(rec, i % 2 ? at : { address: '10.0.0.2', port: randInt(65536) });
    }
    expect(h.delivered).toHaveLength(0);
    expect(h.server.sessionCount).toBe(1);
    expect(h.server.handshakeCount).toBeLessThanOrEqual(1);
    // The session still works.
    h.echo = true;
    c.write(Buffer.from('alive'));
    await new Promise((r) => setTimeout(r, 20));
    expect(c.received.map((b) => b.toString())).toContain('alive');
  });

  it('survives mutated handshake and data records, then serves a real client', async () => {
    const originals = await capturedDatagrams();
    expect(originals.length).toBeGreaterThan(3);
    h = new DtlsHarness({ connectionIdLength: 1 });
    for (let i = 0; i < 20_000; i++) {
      const d = mutate(originals[randInt(originals.length)]);
      h.inject(d, { address: '10.0.0.1', port: 40000 + randInt(4) });
    }
    await new Promise((r) => setTimeout(r, 20));
    const c = h.client({}, '10.0.0.1', 50000);
    await c.handshake();
    c.write(Buffer.from('fine'));
    await new Promise((r) => setTimeout(r, 20));
    expect(c.received.map((b) => b.toString())).toEqual(['fine']);
  });

  it('answers a ClientHello flood from many addresses statelessly, and caps handshakes with cookies', async () => {
    const devices = [device('dev1')];
    h = new DtlsHarness(
      { maxHandshakes: 500, maxHandshakesPerAddress: 4 },
      devices,
      () => new Promise(() => undefined),
    );
    // A real ClientHello to replay from everywhere.
    let hello: Buffer | undefined;
    const probe = new DtlsClientCore({ identity: 'x', key: Buffer.from('y') }, (d) => (hello ??= d));
    void probe.handshake().catch(() => undefined);
    probe.stop('closed');
    const baseline = heapUsed();
    for (let i = 0; i < 30_000; i++) {
      h.inject(hello!, { address: `172.16.${i >> 8}.${i & 0xff}`, port: 1000 + (i % 50) });
    }
    expect(h.server.handshakeCount).toBe(0);
    expect(h.sent).toHaveLength(30_000);
    expect(h.sent.every((s) => s.datagram[13] === HandshakeType.helloVerifyRequest)).toBe(true);
    h.sent.length = 0;

    // Clients that do return their cookie: handshakes start, up to the caps.
    const clients: DtlsClientCore[] = [];
    for (let i = 0; i < 800; i++) {
      const c = h.client({ device: 'dev1', retransmitMs: 60_000 }, `192.168.${i >> 6}.${i & 0x3f}`);
      void c.handshake().catch(() => undefined);
      clients.push(c);
    }
    for (let i = 0; i < 6; i++) {
      const c = h.client({ device: 'dev1', retransmitMs: 60_000 }, '203.0.113.1');
      void c.handshake().catch(() => undefined);
      clients.push(c);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(h.server.handshakeCount).toBe(500);
    expect(await h.metric('cellgate_cap_hits_total', { cap: 'dtls_handshakes' })).toBeGreaterThan(0);
    const grown = heapUsed() - baseline;
    // 500 handshakes in progress, plus the test's own 806 clients and sent-datagram log.
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    for (const c of clients) c.stop('closed');
  });

  it('survives a flood of real UDP datagrams on the listener', async () => {
    const srv = await startListener();
    try {
      const sockets = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const s = createSocket('udp4');
          await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
          return s;
        }),
      );
      for (let i = 0; i < 2000; i++)
        sockets[i % sockets.length].send(randomBytes(randInt(200)), srv.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 200));
      for (const s of sockets) s.close();
      expect(srv.listener.server.sessionCount).toBe(0);
      expect(srv.listener.server.handshakeCount).toBe(0);
      // The kernel drops part of the burst; what arrived was dropped as malformed.
      expect(
        await srv.metric('cellgate_dtls_records_dropped_total', { reason: 'malformed' }),
      ).toBeGreaterThan(0);
      const c = await connectDtls('127.0.0.1', srv.port, {
        identity: 'id-dev1',
        key: Buffer.from('key-of-dev1'),
      });
      expect((await c.request(Buffer.from('after the flood'))).toString()).toBe('after the flood');
      c.close();
    } finally {
      await srv.close();
    }
  });
});
