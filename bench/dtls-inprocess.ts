/**
 * An in-process DTLS server and clients wired back to back (no sockets), for benchmarks: each client
 * runs a real handshake (cookie exchange included) and sends records; the server answers CoAP requests.
 */
import { dtlsSchema, type DtlsConfig } from '../src/config/dtls.js';
import type { Device } from '../src/devices/device.js';
import { MemoryRegistry } from '../src/devices/index.js';
import { DtlsServer } from '../src/dtls/server.js';
import { silentLogger } from '../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../src/ops/metrics.js';
import { answer } from '../test/support/coap-responder.js';
import { DtlsClientCore } from '../test/support/dtls-client.js';

export const KEY = Buffer.from('73656372657450534b', 'hex');

export function devices(n: number): Device[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `dev${i}`,
    thing: `dev${i}`,
    ips: [],
    psk: { identity: `dev${i}`, key: KEY },
  }));
}

export class InProcess {
  readonly server: DtlsServer;
  /** Clients by the synthetic source port the server sees. */
  private readonly clients = new Map<number, DtlsClientCore>();

  constructor(config: Partial<DtlsConfig>, registry: MemoryRegistry) {
    const log = silentLogger();
    const metrics = createMetricsRegistry(false);
    this.server = new DtlsServer({
      config: dtlsSchema.parse(config),
      registry,
      log,
      metrics,
      caps: new CapReporter(metrics, log),
      send: (datagram, port) => this.clients.get(port)?.receive(datagram),
      onApplicationData: answer,
    });
  }

  /** A client for device `i`, seen by the server at 10.x.y.z:port. */
  client(i: number, cid?: Buffer): DtlsClientCore {
    const port = 1024 + (i % 60000);
    const address = `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
    const c = new DtlsClientCore({ identity: `dev${i}`, key: KEY, cid, retransmitMs: 60_000 }, (d) =>
      this.server.receive(d, address, port),
    );
    this.clients.set(port, c);
    return c;
  }

  /** Forgets a client (the server keeps its session). */
  drop(i: number): void {
    this.clients.delete(1024 + (i % 60000));
  }
}
