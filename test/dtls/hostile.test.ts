/**
 * The DTLS server under hostile or unlucky peers: a device that reboots onto its old address and port,
 * forged records during a handshake, close_notify at shutdown, floods of half-open handshakes (from many
 * addresses, from one IPv6 prefix) and of handshake fragments that claim more than they carry.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { admissionKey } from '../../src/dtls/server/admission.js';
import { AlertDescription, ContentType, DTLS_1_2, HandshakeType } from '../../src/dtls/protocol/constants.js';
import { writeRecordHeader } from '../../src/dtls/protocol/record.js';
import { addressKey } from '../../src/dtls/server/session-table.js';
import { connectDtls, type DtlsClientCore } from '../support/dtls-client.js';
import { device, DtlsHarness, startListener, until } from '../support/dtls-harness.js';

let h: DtlsHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function roundTrip(c: DtlsClientCore, text: string): Promise<string> {
  const before = c.received.length;
  c.write(Buffer.from(text));
  await until(() => c.received.length > before, 2000, 'echo');
  return c.received[c.received.length - 1].toString();
}

/** The handshake, or a rejection after `ms` (a client left without an answer retransmits for long). */
function within(c: DtlsClientCore, ms = 2000): Promise<void> {
  const done = c.handshake();
  const t = setTimeout(() => c.abort(`no handshake within ${ms} ms`), ms);
  return done.finally(() => clearTimeout(t));
}

/** Whether a datagram the client sends starts with its flight 5 (ClientKeyExchange in epoch 0). */
function isFlight5(d: Buffer): boolean {
  return (
    d[0] === ContentType.handshake && d[3] === 0 && d[4] === 0 && d[13] === HandshakeType.clientKeyExchange
  );
}

/** An epoch-0 record with one handshake fragment: `bytes` of a message claiming `length`, at `offset`. */
function fragmentRecord(
  seq: number,
  messageSeq: number,
  length: number,
  offset: number,
  bytes: number,
): Buffer {
  const out = Buffer.alloc(13 + 12 + bytes, 0x41);
  let o = writeRecordHeader(out, 0, ContentType.handshake, DTLS_1_2, 0, seq, '', 12 + bytes);
  out[o++] = HandshakeType.clientKeyExchange;
  o = out.writeUIntBE(length, o, 3);
  o = out.writeUInt16BE(messageSeq, o);
  o = out.writeUIntBE(offset, o, 3);
  out.writeUIntBE(bytes, o, 3);
  return out;
}

describe('a device that reconnects from the same address and port', () => {
  it('gets a new session though its random starts with the same clock bytes', async () => {
    h = new DtlsHarness();
    const before = h.client({ helloTime: 1000 }, '10.0.0.1', 5000);
    await before.handshake();
    expect(await roundTrip(before, 'before reboot')).toBe('before reboot');
    before.stop('closed'); // rebooted: it forgot its session
    const after = h.client({ helloTime: 1000, retransmitMs: 50 }, '10.0.0.1', 5000);
    await within(after);
    expect(await roundTrip(after, 'after reboot')).toBe('after reboot');
    expect(h.server.sessionCount).toBe(1);
    expect(h.closed).toHaveLength(1);
  });

  it('gets a new session with a constant first four bytes, over and over', async () => {
    h = new DtlsHarness();
    for (let i = 0; i < 3; i++) {
      const c = h.client({ helloTime: 0, retransmitMs: 50 }, '10.0.0.1', 5000);
      await within(c);
      expect(await roundTrip(c, `boot ${i}`)).toBe(`boot ${i}`);
      c.stop('closed');
    }
    expect(await h.metric('cellgate_dtls_handshakes_completed_total')).toBe(3);
  });

  it('still ignores a late duplicate of the ClientHello that made its session', async () => {
    h = new DtlsHarness();
    const toServer: Buffer[] = [];
    h.drop = (dir, d) => {
      if (dir === 'to-server') toServer.push(d);
      return false;
    };
    const c = h.client({}, '10.0.0.1', 5000);
    await c.handshake();
    expect(await roundTrip(c, 'one')).toBe('one');
    const sent = h.sent.length;
    // The second datagram was the ClientHello with the cookie: the network delivers it again, late.
    h.inject(toServer[1], { address: '10.0.0.1', port: 5000 });
    expect(h.sent.length).toBe(sent);
    expect(h.server.handshakeCount).toBe(0);
    expect(h.closed).toHaveLength(0);
    expect(await roundTrip(c, 'two')).toBe('two');
  });
});

/**
 * A client (asking for a Connection ID) whose flight 5 the network holds back: the test delivers it,
 * or parts of it, when it wants.
 */
async function heldAtFlight5(
  harness: DtlsHarness,
): Promise<{ c: DtlsClientCore; done: Promise<void>; flight5: Buffer }> {
  let flight5: Buffer | undefined;
  harness.drop = (dir, d) => {
    if (dir === 'to-server' && isFlight5(d) && !flight5) {
      flight5 = d;
      return true;
    }
    return false;
  };
  const c = harness.client({ cid: Buffer.alloc(0), retransmitMs: 60_000 }, '10.0.0.1', 5000);
  const done = c.handshake();
  await until(() => flight5 !== undefined, 1000, 'flight 5');
  return { c, done, flight5: flight5! };
}

/** A record under the client's keys (and the server's Connection ID), with its tag broken. */
function forged(c: DtlsClientCore): Buffer {
  const r = Buffer.from(c.record(Buffer.from('forged')));
  r[r.length - 1] ^= 1;
  return r;
}

describe('forged records during a handshake', () => {
  it('drops forged Connection ID records held until the keys are known, and the handshake completes', async () => {
    let release: (d: ReturnType<typeof device>) => void = () => undefined;
    h = new DtlsHarness({}, [], () => new Promise((r) => (release = r)));
    const { c, done, flight5 } = await heldAtFlight5(h);
    // Whoever saw the Connection ID in the ServerHello sends records under it, from anywhere: one before
    // the client's flight 5 arrives, one while the PSK is looked up.
    h.inject(forged(c), { address: '198.51.100.7', port: 9999 });
    h.inject(flight5, { address: '10.0.0.1', port: 5000 });
    h.inject(forged(c), { address: '198.51.100.8', port: 9999 });
    release(device('dev1'));
    await done;
    expect(await roundTrip(c, 'fine')).toBe('fine');
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'handshake_bad_mac' })).toBe(1);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_key' })).toBe(0);
  });

  it('drops a forged record while waiting for the Finished, and the handshake completes', async () => {
    h = new DtlsHarness();
    const { c, done, flight5 } = await heldAtFlight5(h);
    const at = { address: '10.0.0.1', port: 5000 };
    // Only the ClientKeyExchange arrives: the server derives the keys and waits for the Finished.
    h.inject(flight5.subarray(0, 13 + flight5.readUInt16BE(11)), at);
    await new Promise((r) => setTimeout(r, 10));
    expect(h.server.handshakeCount).toBe(1);
    h.inject(forged(c), { address: '203.0.113.5', port: 1 });
    h.inject(forged(c), at);
    expect(h.server.handshakeCount).toBe(1);
    h.inject(flight5, at);
    await done;
    expect(await roundTrip(c, 'fine')).toBe('fine');
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'handshake_bad_mac' })).toBe(2);
  });

  it('still answers a wrong key at once with decrypt_error, counted apart from forged records', async () => {
    h = new DtlsHarness(
      {},
      [device('dev1')],
      (id) => new Promise((r) => setTimeout(() => r(id === 'id-dev1' ? device('dev1') : undefined), 10)),
    );
    const c = h.client({ key: Buffer.from('not the key'), retransmitMs: 60_000 });
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.decryptError}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_key' })).toBe(1);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'handshake_bad_mac' })).toBe(0);
  });
});

describe('shutdown', () => {
  it('sends close_notify to every client before the socket closes', async () => {
    const srv = await startListener({}, [device('d1'), device('d2')]);
    const clients = await Promise.all(
      ['d1', 'd2'].map((id) =>
        connectDtls('127.0.0.1', srv.port, { identity: `id-${id}`, key: Buffer.from(`key-of-${id}`) }),
      ),
    );
    try {
      for (const c of clients) expect((await c.request(Buffer.from('hi'))).toString()).toBe('hi');
      await srv.close();
      await until(() => clients.every((c) => c.core.alerts.includes(0)), 2000, 'close_notify');
      expect(clients.every((c) => c.core.phase === 'closed')).toBe(true);
    } finally {
      for (const c of clients) c.close(false);
    }
  });
});

describe('admission of handshakes', () => {
  it('evicts the oldest half-open handshake at the cap, so a new client still gets in', async () => {
    const devices = Array.from({ length: 6 }, (_, i) => device(`d${i}`));
    h = new DtlsHarness({ maxHandshakes: 4 }, devices);
    // Half-open handshakes: they return their cookie, then never hear flight 4.
    h.drop = (dir, d, at) =>
      dir === 'to-client' && at.address.startsWith('10.9.') && d[13] !== HandshakeType.helloVerifyRequest;
    const flood: DtlsClientCore[] = [];
    for (let i = 0; i < 4; i++) {
      const c = h.client({ device: `d${i}`, retransmitMs: 60_000 }, `10.9.0.${i}`, 7000);
      void c.handshake().catch(() => undefined);
      flood.push(c);
      await until(() => h!.server.handshakeCount === i + 1, 1000, `half-open handshake ${i}`);
    }
    const c = h.client({ device: 'd5', retransmitMs: 50 }, '10.0.0.1');
    await within(c);
    expect(await roundTrip(c, 'in')).toBe('in');
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'evicted' })).toBe(1);
    expect(await h.metric('cellgate_cap_hits_total', { cap: 'dtls_handshakes' })).toBe(1);
    // The oldest went; the others are still in progress.
    expect(h.server.table.byAddress(addressKey('10.9.0.0', 7000))).toBeUndefined();
    for (let i = 1; i < 4; i++)
      expect(h.server.table.byAddress(addressKey(`10.9.0.${i}`, 7000))?.hs).toBeTruthy();
    expect(h.server.handshakeCount).toBe(3);
    for (const f of flood) f.stop('closed');
  });

  it('does not let one address evict others: beyond its own cap it is refused', async () => {
    const devices = Array.from({ length: 6 }, (_, i) => device(`d${i}`));
    h = new DtlsHarness(
      { maxHandshakes: 3, maxHandshakesPerAddress: 2 },
      devices,
      () => new Promise(() => undefined),
    );
    const clients = [h.client({ device: 'd0' }, '10.0.0.2')];
    void clients[0].handshake().catch(() => undefined);
    await until(() => h!.server.handshakeCount === 1, 1000, 'first');
    for (let i = 1; i < 5; i++) {
      const c = h.client({ device: `d${i}` }, '10.0.0.1');
      void c.handshake().catch(() => undefined);
      clients.push(c);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(h.server.handshakeCount).toBe(3);
    expect(h.server.table.byAddress(addressKey('10.0.0.2', 40000))?.hs).toBeTruthy();
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'evicted' })).toBe(0);
    for (const c of clients) c.stop('closed');
  });

  it('caps handshakes per IPv6 /64 by default, and per configured prefix', async () => {
    const devices = Array.from({ length: 8 }, (_, i) => device(`d${i}`));
    const run = async (config: { ipv6PrefixLength?: number }) => {
      const harness = new DtlsHarness(
        { maxHandshakesPerAddress: 2, ...config },
        devices,
        () => new Promise(() => undefined),
      );
      const addresses = ['2001:db8:0:1::a', '2001:db8:0:1::b', '2001:db8:0:1:8000::c', '2001:db8:0:2::1'];
      const clients = addresses.map((a, i) => {
        const c = harness.client({ device: `d${i}` }, a);
        void c.handshake().catch(() => undefined);
        return c;
      });
      await new Promise((r) => setTimeout(r, 50));
      const bound = addresses.map(
        (a) => harness.server.table.byAddress(addressKey(a, 40000 + addresses.indexOf(a))) !== undefined,
      );
      const hits = await harness.metric('cellgate_cap_hits_total', { cap: 'dtls_handshakes_per_address' });
      for (const c of clients) c.stop('closed');
      await harness.close();
      return { count: bound.filter(Boolean).length, bound, hits };
    };
    const by64 = await run({});
    expect(by64.bound).toEqual([true, true, false, true]);
    expect(by64.hits).toBeGreaterThan(0);
    const by128 = await run({ ipv6PrefixLength: 128 });
    expect(by128.count).toBe(4);
    const by16 = await run({ ipv6PrefixLength: 16 });
    expect(by16.count).toBe(2);
  });

  it('keys IPv4 by address, IPv6 by prefix in any spelling, and IPv4-mapped IPv6 as IPv4', () => {
    expect(admissionKey('192.0.2.1', 64)).toBe('192.0.2.1');
    expect(admissionKey('::ffff:192.0.2.1', 64)).toBe('192.0.2.1');
    const a = admissionKey('2001:db8:0:1::a', 64);
    expect(admissionKey('2001:0db8:0000:0001:ffff:ffff:ffff:ffff', 64)).toBe(a);
    expect(admissionKey('2001:db8::1:0:0:0:1%eth0', 64)).toBe(a);
    expect(admissionKey('2001:db8:0:2::a', 64)).not.toBe(a);
    expect(admissionKey('2001:db8:0:1::a', 56)).toBe(admissionKey('2001:db8:0:ff::', 56));
    expect(admissionKey('2001:db8:0:1::a', 56)).not.toBe(admissionKey('2001:db8:0:100::', 56));
    expect(admissionKey('2001:db8::a', 128)).not.toBe(admissionKey('2001:db8::b', 128));
    expect(admissionKey('::', 64)).toBe(admissionKey('::1', 64));
  });
});

describe('reassembly memory', () => {
  /** Half-open handshakes whose flight 5 never arrives, ready to take raw fragments. */
  async function halfOpen(n: number): Promise<DtlsClientCore[]> {
    h!.drop = (dir, d) => dir === 'to-server' && isFlight5(d);
    const clients: DtlsClientCore[] = [];
    for (let i = 0; i < n; i++) {
      const c = h!.client({ retransmitMs: 60_000 }, `10.1.${i >> 8}.${i & 0xff}`, 6000);
      void c.handshake().catch(() => undefined);
      clients.push(c);
    }
    await until(() => h!.server.handshakeCount === n, 2000, `${n} handshakes`);
    await new Promise((r) => setTimeout(r, 10));
    return clients;
  }

  it('holds the bytes that arrived, not the length a fragment claims', async () => {
    h = new DtlsHarness({ maxHandshakeMessageBytes: 4096 });
    const clients = await halfOpen(20);
    for (let i = 0; i < 20; i++)
      h.inject(fragmentRecord(10, 2, 4096, 4090, 6), { address: `10.1.0.${i}`, port: 6000 });
    expect(await h.metric('cellgate_dtls_reassembly_bytes')).toBe(120);
    for (const c of clients) c.stop('closed');
    await h.close();
    expect(h.server.handshakeCount).toBe(0);
    expect(await h.metric('cellgate_dtls_reassembly_bytes')).toBe(0);
  });

  it('bounds the bytes of all reassembly buffers, counts what it drops, and still lets clients in', async () => {
    h = new DtlsHarness({ maxHandshakeMessageBytes: 4096, maxReassemblyBytes: 65_536 });
    const clients = await halfOpen(8);
    // Each handshake: four messages of the window, 4,000 bytes of each.
    for (let i = 0; i < 8; i++)
      for (let m = 2; m < 6; m++)
        h.inject(fragmentRecord(10 + m, m, 4096, 0, 4000), { address: `10.1.0.${i}`, port: 6000 });
    const held = await h.metric('cellgate_dtls_reassembly_bytes');
    expect(held).toBeLessThanOrEqual(65_536);
    expect(held).toBeGreaterThan(60_000);
    expect(await h.metric('cellgate_cap_hits_total', { cap: 'dtls_reassembly_bytes' })).toBeGreaterThan(0);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'reassembly_cap' })).toBe(32 - 16);
    // A client whose messages come whole needs no reassembly buffer.
    h.drop = () => false;
    const c = h.client({ retransmitMs: 50 }, '10.2.0.1');
    await within(c);
    expect(await roundTrip(c, 'in')).toBe('in');
    for (const x of clients) x.stop('closed');
  });
});

describe('a ClientHello numbered at the end of message_seq', () => {
  /** A client's ClientHello with the cookie, held back; `c` still waits for flight 4. */
  async function helloWithCookie(): Promise<{ c: DtlsClientCore; hello: Buffer }> {
    const held: Buffer[] = [];
    h!.drop = (dir, d) => dir === 'to-server' && held.push(d) > 1;
    const c = h!.client({ retransmitMs: 60_000 }, '10.0.0.1', 5000);
    void c.handshake().catch(() => undefined);
    await until(() => held.length === 2, 1000, 'the ClientHello with the cookie');
    return { c, hello: held[1] };
  }

  it('is dropped: the server could not number its flight after it (found by the dtls-handshake fuzz target)', async () => {
    h = new DtlsHarness();
    const { c, hello } = await helloWithCookie();
    const at = { address: '10.0.0.1', port: 5000 };
    // message_seq 0xffff leaves no number for the ServerHelloDone after the ServerHello: a RangeError thrown
    // out of the datagram handler, which ends the process. 0xfffa leaves just enough for the longest flight.
    const last = Buffer.from(hello);
    last.writeUInt16BE(0xffff, 13 + 4);
    expect(() => h!.inject(last, at)).not.toThrow();
    expect(h.server.handshakeCount).toBe(0);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'bad_hello' })).toBe(1);
    const highest = Buffer.from(hello);
    highest.writeUInt16BE(0xfffa, 13 + 4);
    h.inject(highest, at);
    expect(h.server.handshakeCount).toBe(1);
    expect(h.sent.at(-1)?.datagram.readUInt16BE(13 + 4)).toBe(0xfffa);
    c.stop('closed');
  });
});
