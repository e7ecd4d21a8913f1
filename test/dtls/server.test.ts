/** The DTLS server in-process: handshakes, record layer, sessions, caps and failure paths. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AlertDescription, ContentType, HandshakeType } from '../../src/dtls/protocol/constants.js';
import { readRecord, RecordHeader } from '../../src/dtls/protocol/record.js';
import { handshakeMessage } from '../../src/dtls/protocol/handshake.js';
import { device, DtlsHarness, until } from '../support/dtls-harness.js';

const CCM_8 = 0xc0a8;
const GCM = 0x00a8;
const CCM = 0xc0a4;

let h: DtlsHarness;
afterEach(async () => {
  vi.useRealTimers();
  await h?.close();
});

async function roundTrip(c: ReturnType<DtlsHarness['client']>, text: string): Promise<string> {
  const before = c.received.length;
  c.write(Buffer.from(text));
  await until(() => c.received.length > before, 2000, 'echo');
  return c.received[c.received.length - 1].toString();
}

describe('handshake', () => {
  for (const [name, suite] of [
    ['CCM_8', CCM_8],
    ['GCM', GCM],
    ['CCM', CCM],
  ] as const) {
    it(`completes with ${name} after a cookie exchange and carries data both ways`, async () => {
      h = new DtlsHarness();
      const c = h.client({ cipherSuites: [suite] });
      await c.handshake();
      expect(c.suite?.id).toBe(suite);
      expect(await roundTrip(c, 'hello')).toBe('hello');
      const peer = h.delivered[0].peer;
      expect(peer.transport).toBe('coaps');
      expect(peer.deviceId).toBe('dev1');
      expect(peer.pskIdentity).toBe('id-dev1');
      expect(peer.key).toMatch(/^dtls:[A-Za-z0-9_-]{12}$/);
      expect(peer.address).toBe('10.0.0.1');
      expect(h.server.sessionCount).toBe(1);
      expect(h.server.handshakeCount).toBe(0);
      expect(await h.metric('cellgate_dtls_handshakes_completed_total')).toBe(1);
      expect(await h.metric('cellgate_dtls_hello_verify_requests_total')).toBe(1);
    });
  }

  it('carries records of every size class both ways with each suite (block boundaries, empty, large)', async () => {
    for (const suite of [CCM_8, GCM, CCM]) {
      h = new DtlsHarness();
      const c = h.client({ cipherSuites: [suite] });
      await c.handshake();
      for (const n of [1, 15, 16, 17, 31, 32, 33, 200, 1500, 4000]) {
        const text = Array.from({ length: n }, (_, i) => String.fromCharCode(33 + ((i * 7 + n) % 90))).join(
          '',
        );
        expect(await roundTrip(c, text)).toBe(text);
      }
      expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'bad_mac' })).toBe(0);
      await h.close();
    }
  });

  it('prefers the server’s order of suites', async () => {
    h = new DtlsHarness({ cipherSuites: ['TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM_8'] });
    const c = h.client({ cipherSuites: [CCM_8, GCM] });
    await c.handshake();
    expect(c.suite?.id).toBe(GCM);
  });

  it('works without the extended master secret unless it is required', async () => {
    h = new DtlsHarness();
    await h.client({ extendedMasterSecret: false }).handshake();
    await h.close();
    h = new DtlsHarness({ requireExtendedMasterSecret: true });
    const c = h.client({ extendedMasterSecret: false });
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.handshakeFailure}`);
    expect(
      await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'no_extended_master_secret' }),
    ).toBe(1);
  });

  it('refuses a client without a common suite', async () => {
    h = new DtlsHarness({ cipherSuites: ['TLS_PSK_WITH_AES_128_CCM_8'] });
    await expect(h.client({ cipherSuites: [GCM] }).handshake()).rejects.toThrow(
      `alert ${AlertDescription.handshakeFailure}`,
    );
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'no_common_suite' })).toBe(1);
    expect(h.server.handshakeCount).toBe(0);
  });

  it('answers an unknown identity and a wrong key alike, with decrypt_error and no session', async () => {
    h = new DtlsHarness();
    const unknown = h.client({ identity: 'nobody' });
    const wrong = h.client({ key: Buffer.from('not the key') });
    await expect(unknown.handshake()).rejects.toThrow(`alert ${AlertDescription.decryptError}`);
    await expect(wrong.handshake()).rejects.toThrow(`alert ${AlertDescription.decryptError}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'unknown_identity' })).toBe(1);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_key' })).toBe(1);
    expect(h.server.sessionCount).toBe(0);
    expect(h.server.handshakeCount).toBe(0);
    expect(h.delivered).toHaveLength(0);
  });

  it('looks the PSK up asynchronously, and fails cleanly when the registry fails', async () => {
    const dev = device('dev1');
    h = new DtlsHarness(
      {},
      [],
      (id) => new Promise((r) => setTimeout(() => r(id === 'id-dev1' ? dev : undefined), 30)),
    );
    const c = h.client();
    await c.handshake();
    expect(await roundTrip(c, 'slow registry')).toBe('slow registry');
    await h.close();
    h = new DtlsHarness({}, [], () => Promise.reject(new Error('registry down')));
    await expect(h.client().handshake()).rejects.toThrow(`alert ${AlertDescription.internalError}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'lookup_error' })).toBe(1);
  });

  it('keeps no state for a ClientHello without a valid cookie, and answers it with a smaller datagram', async () => {
    h = new DtlsHarness();
    const c = h.client();
    const hellos: Buffer[] = [];
    h.drop = (dir, d) => {
      if (dir === 'to-server') hellos.push(d);
      return dir === 'to-server'; // the server never hears the cookie back
    };
    void c.handshake().catch(() => undefined);
    h.inject(hellos[0], { address: '10.0.0.1', port: 40000 });
    expect(h.sent).toHaveLength(1);
    expect(h.sent[0].datagram.length).toBeLessThanOrEqual(hellos[0].length);
    expect(h.sent[0].datagram[13]).toBe(HandshakeType.helloVerifyRequest);
    expect(h.server.handshakeCount).toBe(0);
    c.stop('closed');
  });

  it('refuses a cookie echoed from another address', async () => {
    h = new DtlsHarness();
    const c = h.client();
    let hvr: Buffer | undefined;
    const toServer: Buffer[] = [];
    h.drop = (dir, d) => {
      if (dir === 'to-server') toServer.push(d);
      if (dir === 'to-client' && d[13] === HandshakeType.helloVerifyRequest) hvr = d;
      return dir === 'to-server' && toServer.length > 1;
    };
    void c.handshake().catch(() => undefined);
    await until(() => toServer.length === 2, 1000, 'second ClientHello');
    expect(hvr).toBeDefined();
    h.inject(toServer[1], { address: '10.0.0.99', port: 40000 });
    expect(h.server.handshakeCount).toBe(0);
    expect(h.sent.at(-1)!.datagram[13]).toBe(HandshakeType.helloVerifyRequest);
    h.inject(toServer[1], { address: '10.0.0.1', port: 40000 });
    expect(h.server.handshakeCount).toBe(1);
    c.stop('closed');
  });

  it('retransmits flight 4 on its timer and flight 6 when the client repeats its Finished', async () => {
    h = new DtlsHarness({ retransmitInitialMs: 100 });
    let serverHellos = 0;
    let finishes = 0;
    h.drop = (dir, d) => {
      if (dir !== 'to-client') return false;
      const r = new RecordHeader();
      readRecord(d, 0, 0, r);
      if (r.type === ContentType.handshake && d[13] === HandshakeType.serverHello)
        return ++serverHellos === 1;
      if (r.type === ContentType.changeCipherSpec) return ++finishes === 1;
      return false;
    };
    const c = h.client({ retransmitMs: 300 });
    await c.handshake();
    expect(serverHellos).toBe(2);
    expect(finishes).toBe(2);
    expect(await h.metric('cellgate_dtls_flights_retransmitted_total')).toBe(2);
    expect(await roundTrip(c, 'after loss')).toBe('after loss');
    expect(h.server.sessionCount).toBe(1);
  });

  it('gives up on a silent client once the flight timeout reaches its maximum', async () => {
    h = new DtlsHarness({ retransmitInitialMs: 100, retransmitMaxMs: 200 });
    let flights = 0;
    h.drop = (dir, d) => {
      if (dir === 'to-client' && d[13] === HandshakeType.serverHello) flights++;
      return dir === 'to-client' && d[13] === HandshakeType.serverHello;
    };
    const c = h.client({ retransmitMs: 5000 });
    void c.handshake().catch(() => undefined);
    await until(() => h.server.handshakeCount === 1, 1000, 'handshake start');
    await until(() => h.server.handshakeCount === 0, 2000, 'handshake timeout');
    expect(flights).toBe(2); // sent, sent again after 100 ms, failed after waiting the 200 ms maximum
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'timeout' })).toBe(1);
    c.stop('closed');
  });

  it('lets a client give up a handshake: its promise rejects and it sends nothing more', async () => {
    h = new DtlsHarness();
    let toServer = 0;
    h.drop = (dir) => {
      if (dir === 'to-server') toServer++;
      return dir === 'to-client'; // the server's answers never arrive
    };
    const c = h.client({ retransmitMs: 20 });
    const done = c.handshake();
    await until(() => toServer >= 2, 1000, 'a retransmitted ClientHello');
    c.abort('given up');
    await expect(done).rejects.toThrow('given up');
    expect(c.phase).toBe('failed');
    const sent = toServer;
    await new Promise((r) => setTimeout(r, 100));
    expect(toServer).toBe(sent);
  });

  it('holds only a few small epoch-1 records while the PSK is looked up', async () => {
    let release: (d: ReturnType<typeof device>) => void = () => undefined;
    h = new DtlsHarness({}, [], () => new Promise((r) => (release = r)));
    const c = h.client({ retransmitMs: 60_000 });
    const done = c.handshake();
    await until(() => h.server.handshakeCount === 1 && h.sent.length >= 2, 1000, 'flight 5 sent');
    await new Promise((r) => setTimeout(r, 10));
    const at = { address: '10.0.0.1', port: 40000 };
    // Large and numerous epoch-1 records while the lookup is pending are not kept.
    h.inject(c.record(Buffer.alloc(2000)), at);
    for (let i = 0; i < 6; i++) h.inject(c.record(Buffer.alloc(10)), at);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'handshake_cap' })).toBe(4);
    release(device('dev1'));
    await done;
    expect(h.server.sessionCount).toBe(1);
  });

  it('drops a handshake stuck on the registry after the handshake timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'Date'] });
    h = new DtlsHarness({ handshakeTimeoutMs: 5000 }, [], () => new Promise(() => undefined));
    const c = h.client({ retransmitMs: 60_000 });
    void c.handshake().catch(() => undefined);
    for (let i = 0; i < 20 && h.server.handshakeCount === 0; i++) await Promise.resolve();
    await vi.advanceTimersByTimeAsync(10);
    expect(h.server.handshakeCount).toBe(1);
    await vi.advanceTimersByTimeAsync(7000);
    expect(h.server.handshakeCount).toBe(0);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'timeout' })).toBe(1);
    c.stop('closed');
  });
});

describe('record layer', () => {
  it('delivers several records of one datagram, each once, and drops replays and forgeries', async () => {
    h = new DtlsHarness();
    h.echo = false;
    const c = h.client();
    await c.handshake();
    const a = c.record(Buffer.from('one'));
    const b = c.record(Buffer.from('two'));
    const at = { address: '10.0.0.1', port: 40000 };
    h.inject(Buffer.concat([a, b]), at);
    h.inject(a, at);
    h.inject(Buffer.concat([b, a]), at);
    const forged = Buffer.from(c.record(Buffer.from('three')));
    forged[forged.length - 1] ^= 1;
    h.inject(forged, at);
    expect(h.delivered.map((d) => d.data.toString())).toEqual(['one', 'two']);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'replay' })).toBe(3);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'bad_mac' })).toBe(1);
    // The forged record did not burn its sequence number: the genuine one still gets through.
    expect(h.server.sessionCount).toBe(1);
  });

  it('drops records from an address without a session and garbage after a good record', async () => {
    h = new DtlsHarness();
    h.echo = false;
    const c = h.client();
    await c.handshake();
    const rec = c.record(Buffer.from('x'));
    h.inject(rec, { address: '10.0.0.2', port: 40000 });
    h.inject(Buffer.concat([c.record(Buffer.from('y')), Buffer.from([0x17, 0xfe, 0xfd, 0])]), {
      address: '10.0.0.1',
      port: 40000,
    });
    expect(h.delivered.map((d) => d.data.toString())).toEqual(['y']);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'no_session' })).toBe(1);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'malformed' })).toBe(1);
  });

  it('refuses renegotiation with a no_renegotiation warning and keeps the session', async () => {
    h = new DtlsHarness();
    const c = h.client();
    await c.handshake();
    const hello = handshakeMessage(HandshakeType.clientHello, 4, Buffer.alloc(40));
    c.write(Buffer.alloc(0));
    h.inject(c.record(hello, ContentType.handshake), { address: '10.0.0.1', port: 40000 });
    await until(() => c.alerts.includes(AlertDescription.noRenegotiation), 1000, 'no_renegotiation');
    expect(await roundTrip(c, 'still here')).toBe('still here');
  });

  it('answers close_notify with close_notify and ends the session', async () => {
    h = new DtlsHarness();
    const c = h.client();
    await c.handshake();
    await roundTrip(c, 'hi');
    c.close();
    await until(() => h.server.sessionCount === 0, 1000, 'session end');
    expect(h.closed).toHaveLength(1);
    expect(h.closed[0]).toBe(h.delivered[0].peer);
    const last = h.sent.at(-1)!;
    expect(last.datagram[0]).toBe(ContentType.alert);
  });

  it('does not send to a client more than its record_size_limit', async () => {
    h = new DtlsHarness();
    h.echo = false;
    const c = h.client({ recordSizeLimit: 64 });
    await c.handshake();
    c.write(Buffer.from('x'));
    await until(() => h.delivered.length === 1, 1000, 'delivery');
    const peer = h.delivered[0].peer;
    const before = h.sent.length;
    peer.send(Buffer.alloc(65));
    expect(h.sent.length).toBe(before);
    peer.send(Buffer.alloc(64));
    expect(h.sent.length).toBe(before + 1);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'too_large' })).toBe(1);
  });
});

describe('Connection ID', () => {
  it('follows the client to a new address on an authenticated newer record, and only then', async () => {
    h = new DtlsHarness({ connectionIdLength: 4 });
    const c = h.client({ cid: Buffer.from([0xc1, 0xd2]) }, '10.0.0.1', 5000);
    await c.handshake();
    expect(c.serverCid.length).toBe(4);
    expect(await roundTrip(c, 'before')).toBe('before');
    const older = c.record(Buffer.from('older')); // kept back, as if delayed in the network
    h.move(c, { address: '192.0.2.7', port: 6000 });
    expect(await roundTrip(c, 'after')).toBe('after');
    const peer = h.delivered[0].peer;
    expect([peer.address, peer.port]).toEqual(['192.0.2.7', 6000]);
    expect(h.sent.at(-1)!.address).toBe('192.0.2.7');
    // Records to the client carry its CID.
    expect(h.sent.at(-1)!.datagram[0]).toBe(ContentType.tls12Cid);
    expect(h.sent.at(-1)!.datagram.subarray(11, 13)).toEqual(Buffer.from([0xc1, 0xd2]));
    expect(await h.metric('cellgate_dtls_cid_address_updates_total')).toBe(1);

    // An older record from a third address authenticates and is delivered, but does not move the session.
    h.inject(older, { address: '198.51.100.9', port: 7000 });
    expect(h.delivered.at(-1)!.data.toString()).toBe('older');
    expect([peer.address, peer.port]).toEqual(['192.0.2.7', 6000]);
    // A replay of the newest record from elsewhere is dropped.
    const newest = c.record(Buffer.from('newest'));
    h.inject(newest, { address: '192.0.2.7', port: 6000 });
    h.inject(newest, { address: '198.51.100.9', port: 7000 });
    expect(h.delivered.filter((d) => d.data.toString() === 'newest')).toHaveLength(1);
    expect([peer.address, peer.port]).toEqual(['192.0.2.7', 6000]);
    expect(await h.metric('cellgate_dtls_cid_address_updates_total')).toBe(1);
  });

  it('sends plain records to a client that wants no CID, and is not found by address', async () => {
    h = new DtlsHarness({ connectionIdLength: 6 });
    const c = h.client({ cid: Buffer.alloc(0) });
    await c.handshake();
    expect(await roundTrip(c, 'x')).toBe('x');
    expect(h.sent.at(-1)!.datagram[0]).toBe(ContentType.applicationData);
    // Records must name the session by CID: a plain record from the same address finds nothing.
    const cid = c.serverCid;
    c.serverCid = '';
    h.inject(c.record(Buffer.from('plain')), { address: '10.0.0.1', port: 40000 });
    c.serverCid = cid;
    expect(h.delivered.map((d) => d.data.toString())).toEqual(['x']);
    expect(await h.metric('cellgate_dtls_records_dropped_total', { reason: 'no_session' })).toBe(1);
  });

  it('is off when the configured length is 0', async () => {
    h = new DtlsHarness({ connectionIdLength: 0 });
    const c = h.client({ cid: Buffer.from([1, 2]) });
    await c.handshake();
    expect(c.serverCid).toBe('');
    expect(await roundTrip(c, 'x')).toBe('x');
    h.move(c, { address: '10.9.9.9', port: 1 });
    c.write(Buffer.from('lost'));
    await new Promise((r) => setTimeout(r, 20));
    expect(h.delivered.map((d) => d.data.toString())).toEqual(['x']);
  });
});

describe('session table', () => {
  it('expires idle sessions on the sweep', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'Date'] });
    h = new DtlsHarness({ idleTimeoutMs: 60_000 });
    const c = h.client();
    await c.handshake();
    await vi.advanceTimersByTimeAsync(30_000);
    c.write(Buffer.from('keep alive'));
    await Promise.resolve();
    await vi.advanceTimersByTimeAsync(45_000);
    expect(h.server.sessionCount).toBe(1);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.server.sessionCount).toBe(0);
    expect(h.closed).toHaveLength(1);
  });

  it('keeps one session per device: a new handshake replaces the old session', async () => {
    h = new DtlsHarness();
    const a = h.client({}, '10.0.0.1');
    await a.handshake();
    await roundTrip(a, 'a');
    const b = h.client({}, '10.0.0.2');
    await b.handshake();
    expect(h.server.sessionCount).toBe(1);
    expect(h.closed.map((p) => p.address)).toEqual(['10.0.0.1']);
    expect(await roundTrip(b, 'b')).toBe('b');
  });

  it('evicts the least recently active session when full', async () => {
    const devices = ['d1', 'd2', 'd3'].map((id) => device(id));
    vi.useFakeTimers({ toFake: ['Date'] });
    h = new DtlsHarness({ maxSessions: 2 }, devices);
    const c1 = h.client({ device: 'd1' });
    const c2 = h.client({ device: 'd2' });
    await c1.handshake();
    await c2.handshake();
    // Activity is kept to the second.
    vi.setSystemTime(Date.now() + 2000);
    await roundTrip(c1, 'touch d1');
    const c3 = h.client({ device: 'd3' });
    await c3.handshake();
    expect(h.server.sessionCount).toBe(2);
    expect(h.closed.map((p) => p.deviceId)).toEqual(['d2']);
    expect(await h.metric('cellgate_cap_hits_total', { cap: 'dtls_sessions' })).toBe(1);
  });

  it('caps handshakes in progress, in total and per source address', async () => {
    const devices = Array.from({ length: 6 }, (_, i) => device(`d${i}`));
    h = new DtlsHarness(
      { maxHandshakes: 3, maxHandshakesPerAddress: 2 },
      devices,
      () => new Promise(() => undefined),
    );
    const start = (id: string, address: string) => {
      const c = h.client({ device: id }, address);
      void c.handshake().catch(() => undefined);
      return c;
    };
    const clients = [start('d0', '10.0.0.1'), start('d1', '10.0.0.1'), start('d2', '10.0.0.1')];
    await until(() => h.server.handshakeCount === 2, 1000, 'two handshakes');
    await new Promise((r) => setTimeout(r, 30));
    expect(h.server.handshakeCount).toBe(2);
    clients.push(start('d3', '10.0.0.2'), start('d4', '10.0.0.3'));
    await until(() => h.server.handshakeCount === 3, 1000, 'three handshakes');
    await new Promise((r) => setTimeout(r, 30));
    expect(h.server.handshakeCount).toBe(3);
    expect(await h.metric('cellgate_cap_hits_total', { cap: 'dtls_handshakes_per_address' })).toBeGreaterThan(
      0,
    );
    expect(await h.metric('cellgate_cap_hits_total', { cap: 'dtls_handshakes' })).toBeGreaterThan(0);
    for (const c of clients) c.stop('closed');
  });

  it('ends the sessions of a device on request, and every session on close', async () => {
    const devices = ['d1', 'd2'].map((id) => device(id));
    h = new DtlsHarness({}, devices);
    const c1 = h.client({ device: 'd1' });
    const c2 = h.client({ device: 'd2' });
    await c1.handshake();
    await c2.handshake();
    expect(h.server.endSessionsOf('d1')).toBe(1);
    expect(h.server.endSessionsOf('d1')).toBe(0);
    await until(() => c1.phase === 'closed', 1000, 'close_notify to d1');
    expect(h.server.sessionCount).toBe(1);
    await h.server.close();
    await until(() => c2.phase === 'closed', 1000, 'close_notify to d2');
    expect(h.server.sessionCount).toBe(0);
    expect(h.closed.map((p) => p.deviceId)).toEqual(['d1', 'd2']);
  });
});
