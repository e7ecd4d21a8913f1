/**
 * An in-process DTLS server and clients wired back to back (no sockets), for benchmarks: each client
 * runs a real handshake (cookie exchange included) and sends records; the server answers CoAP requests.
 */
import { dtlsSchema, type DtlsConfig } from '../src/config/dtls.js';
import type { Device } from '../src/devices/device.js';
import { MemoryRegistry } from '../src/devices/memory-registry.js';
import { dtlsLookups } from '../src/devices/dtls-lookups.js';
import { DtlsServer } from '../src/dtls/server/server.js';
import { silentLogger } from '../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../src/ops/metrics.js';
import { answer } from '../test/support/coap-responder.js';
import { DtlsClientCore, type DtlsClientOptions } from '../src/dtls/client.js';

export const KEY = Buffer.from('73656372657450534b', 'hex');

export function devices(n: number): Device[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `dev${i}`,
    thing: `dev${i}`,
    ips: [],
    psk: { identity: `dev${i}`, key: KEY },
  }));
}

/**
 * Splits the time of one thread between server and clients: each side's calls are timed exclusively
 * (nested calls of the other side are subtracted). Time outside both (the PSK lookup completing in a
 * microtask, the event loop) counts as the server's.
 */
export class TimeSplit {
  /** Milliseconds: [server, client]. */
  readonly ms = [0, 0];
  private side = 0;
  private last = performance.now();

  enter(side: number): number {
    const now = performance.now();
    this.ms[this.side] += now - this.last;
    this.last = now;
    const prev = this.side;
    this.side = side;
    return prev;
  }

  leave(prev: number): void {
    this.enter(prev);
  }

  reset(): void {
    this.ms[0] = this.ms[1] = 0;
    this.side = 0;
    this.last = performance.now();
  }

  /** Share of the server in the time measured since the last reset. */
  get serverShare(): number {
    this.enter(this.side);
    return this.ms[0] / (this.ms[0] + this.ms[1]);
  }
}

const SERVER = 0;
const CLIENT = 1;

export class InProcess {
  readonly server: DtlsServer;
  readonly time = new TimeSplit();
  /** Clients by the synthetic source port the server sees. */
  private readonly clients = new Map<number, DtlsClientCore>();

  constructor(config: Partial<DtlsConfig>, registry: MemoryRegistry) {
    const log = silentLogger();
    const metrics = createMetricsRegistry(false);
    this.server = new DtlsServer({
      config: dtlsSchema.parse(config),
      ...dtlsLookups(registry),
      log,
      metrics,
      caps: new CapReporter(metrics, log),
      send: (datagram, port) => {
        const c = this.clients.get(port);
        if (!c) return;
        const prev = this.time.enter(CLIENT);
        c.receive(datagram);
        this.time.leave(prev);
      },
      onApplicationData: answer,
    });
  }

  /** A client for device `i`, seen by the server at 10.x.y.z:port. */
  client(i: number, opts: Partial<DtlsClientOptions> = {}): DtlsClientCore {
    const port = 1024 + (i % 60000);
    const address = `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
    const c = new DtlsClientCore({ identity: `dev${i}`, key: KEY, retransmitMs: 60_000, ...opts }, (d) => {
      const prev = this.time.enter(SERVER);
      this.server.receive(d, address, port);
      this.time.leave(prev);
    });
    this.clients.set(port, c);
    return c;
  }

  /** Runs `f` as client-side work (its calls into the server count as the server's). */
  asClient<T>(f: () => T): T {
    const prev = this.time.enter(CLIENT);
    try {
      return f();
    } finally {
      this.time.leave(prev);
    }
  }

  /** Forgets a client (the server keeps its session). */
  drop(i: number): void {
    this.clients.delete(1024 + (i % 60000));
  }
}
