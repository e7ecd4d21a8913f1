/** The origin the DTLS server hands its record layer and handshake: refilled per datagram, never shared. */
import { afterEach, describe, expect, it } from 'vitest';
import { dtlsSchema } from '../../src/config/dtls.js';
import { dtlsLookups } from '../../src/devices/dtls-lookups.js';
import { MemoryRegistry } from '../../src/devices/memory-registry.js';
import { DtlsClientCore } from '../../src/dtls/client.js';
import { HandshakeType } from '../../src/dtls/protocol/constants.js';
import { Origin } from '../../src/dtls/server/origin.js';
import { DtlsServer } from '../../src/dtls/server/server.js';
import { addressKey } from '../../src/dtls/server/session-table.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';

describe('Origin', () => {
  it('makes the address key on first use and forgets it, and the bound session, when refilled', () => {
    const o = new Origin();
    o.set('10.0.0.1', 5684, 1);
    expect(o.addressKey).toBe(addressKey('10.0.0.1', 5684));
    o.bound = {} as never;
    o.set('2001:db8::1', 5684, 2);
    expect(o).toMatchObject({ address: '2001:db8::1', port: 5684, datagram: 2, bound: undefined });
    expect(o.addressKey).toBe(addressKey('2001:db8::1', 5684));
  });
});

describe('a datagram handed in while another is handled', () => {
  let server: DtlsServer | undefined;
  afterEach(() => server?.close());

  it('leaves the outer datagram its own origin: later records in it are answered to their own address', () => {
    // A ClientHello without a cookie, twice in one datagram: each is answered with a HelloVerifyRequest.
    const hellos: Buffer[] = [];
    const client = new DtlsClientCore(
      { identity: 'id-dev1', key: Buffer.from('k'), retransmitMs: 60_000 },
      (d) => hellos.push(d),
    );
    void client.handshake().catch(() => undefined);
    client.stop('closed');
    const hello = hellos[0];
    const sent: { type: number; address: string; port: number }[] = [];
    const metrics = createMetricsRegistry(false);
    const log = silentLogger();
    let nested = false;
    server = new DtlsServer({
      config: dtlsSchema.parse({}),
      ...dtlsLookups(new MemoryRegistry([])),
      log,
      metrics,
      caps: new CapReporter(metrics, log),
      // A send that loops straight back, as in-process clients do: the first answer brings another
      // client's ClientHello in before the server has read the second record of the first datagram.
      send: (datagram, port, address) => {
        sent.push({ type: datagram[13], address, port });
        if (nested) return;
        nested = true;
        server?.receive(hello, '10.0.0.9', 7000);
      },
      onApplicationData: () => undefined,
    });
    server.receive(Buffer.concat([hello, hello]), '10.0.0.1', 6000);
    expect(sent.map((s) => s.type)).toEqual(Array(3).fill(HandshakeType.helloVerifyRequest));
    expect(sent.map((s) => `${s.address}:${s.port}`)).toEqual([
      '10.0.0.1:6000',
      '10.0.0.9:7000',
      '10.0.0.1:6000',
    ]);
  });
});
