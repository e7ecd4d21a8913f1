/**
 * An in-process DTLS server with clients wired to it through a simulated network: datagrams are delivered
 * asynchronously (a microtask), clients sit at synthetic addresses that tests can change, and a filter can
 * drop datagrams. The application echoes every message back (or not), and records what it saw.
 */
import type { Registry } from 'prom-client';
import { dtlsSchema, type DtlsConfig } from '../../src/config/dtls.js';
import type { Device } from '../../src/devices/device.js';
import { MemoryRegistry } from '../../src/devices/memory-registry.js';
import { dtlsLookups } from '../../src/devices/dtls-lookups.js';
import { createDtlsListener, type DtlsListener } from '../../src/dtls/server/listener.js';
import type { CertificateStatus } from '../../src/dtls/certificates/aws-iot-status.js';
import { DtlsServer } from '../../src/dtls/server/server.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import type { Peer } from '../../src/transport/peer.js';
import { answer } from './coap-responder.js';
import { DtlsClientCore, type DtlsClientOptions } from './dtls-client.js';

/** The value of a metric (with these labels) in a registry, 0 when absent. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

export function device(id: string, key = `key-of-${id}`): Device {
  return { id, thing: id, ips: [], psk: { identity: `id-${id}`, key: Buffer.from(key) } };
}

export interface Endpoint {
  address: string;
  port: number;
}

type Direction = 'to-server' | 'to-client';

export class DtlsHarness {
  readonly server: DtlsServer;
  readonly metrics: Registry = createMetricsRegistry(false);
  readonly registry: MemoryRegistry;
  private readonly caps: CapReporter;
  readonly delivered: { data: Buffer; peer: Peer }[] = [];
  readonly closed: Peer[] = [];
  /** Datagrams sent by the server, with their destination. */
  readonly sent: { datagram: Buffer; address: string; port: number }[] = [];
  echo = true;
  /** Return true to drop a datagram. */
  drop: (dir: Direction, datagram: Buffer, at: Endpoint) => boolean = () => false;
  private readonly clients = new Map<string, DtlsClientCore>();
  private readonly where = new Map<DtlsClientCore, Endpoint>();
  private nextPort = 40000;

  constructor(
    config: Partial<DtlsConfig> = {},
    devices: Device[] = [device('dev1')],
    lookup?: (id: string) => Promise<Device | undefined>,
    certificateStatus?: CertificateStatus,
  ) {
    this.registry = new MemoryRegistry(devices);
    const log = silentLogger();
    this.caps = new CapReporter(this.metrics, log);
    const registry = lookup
      ? { byPskIdentity: lookup, byCredential: () => Promise.resolve(undefined) }
      : this.registry;
    this.server = new DtlsServer({
      config: dtlsSchema.parse(config),
      ...dtlsLookups(registry),
      log,
      metrics: this.metrics,
      caps: this.caps,
      send: (datagram, port, address) => {
        this.sent.push({ datagram, address, port });
        const c = this.clients.get(`${address}/${port}`);
        if (c && !this.drop('to-client', datagram, { address, port }))
          queueMicrotask(() => c.receive(datagram));
      },
      onApplicationData: (data, peer) => {
        this.delivered.push({ data: Buffer.from(data), peer });
        if (this.echo) peer.send(data);
      },
      onSessionClosed: (peer) => this.closed.push(peer),
      certificateStatus,
    });
  }

  /** A client at `address` (and a fresh port unless given). */
  client(
    opts: Partial<DtlsClientOptions> & { device?: string } = {},
    address = '10.0.0.1',
    port = this.nextPort++,
  ): DtlsClientCore {
    const id = opts.device ?? 'dev1';
    const core = new DtlsClientCore(
      { identity: `id-${id}`, key: Buffer.from(`key-of-${id}`), retransmitMs: 100, ...opts },
      (d) => {
        const at = this.where.get(core)!;
        if (!this.drop('to-server', d, at)) queueMicrotask(() => this.server.receive(d, at.address, at.port));
      },
    );
    this.attach(core, { address, port });
    return core;
  }

  /** Moves a client to another address (NAT rebinding); the server must follow by Connection ID. */
  move(core: DtlsClientCore, to: Endpoint): void {
    const from = this.where.get(core)!;
    this.clients.delete(`${from.address}/${from.port}`);
    this.attach(core, to);
  }

  /** Sends a datagram to the server as if from `at`. */
  inject(datagram: Buffer, at: Endpoint): void {
    this.server.receive(datagram, at.address, at.port);
  }

  private attach(core: DtlsClientCore, at: Endpoint): void {
    this.where.set(core, at);
    this.clients.set(`${at.address}/${at.port}`, core);
  }

  metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricValue(this.metrics, name, labels);
  }

  async close(): Promise<void> {
    await this.server.close();
    this.caps.close();
  }
}

/** Resolves once `cond` holds, polling on timers (works with real timers only). */
export async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface ListenerHarness {
  listener: DtlsListener;
  port: number;
  metrics: Registry;
  delivered: { data: Buffer; peer: Peer }[];
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** The real UDP listener on an ephemeral port, answering CoAP requests and echoing anything else. */
export async function startListener(
  config: Partial<DtlsConfig> = {},
  devices: Device[] = [device('dev1')],
): Promise<ListenerHarness> {
  const metrics = createMetricsRegistry(false);
  const log = silentLogger();
  const delivered: { data: Buffer; peer: Peer }[] = [];
  const caps = new CapReporter(metrics, log);
  const listener = await createDtlsListener({
    bind: '127.0.0.1',
    port: 0,
    socketBufferBytes: 1024 * 1024,
    config: dtlsSchema.parse(config),
    ...dtlsLookups(new MemoryRegistry(devices)),
    log,
    metrics,
    caps,
    onApplicationData(data, peer) {
      delivered.push({ data: Buffer.from(data), peer });
      answer(data, peer);
    },
  });
  return {
    listener,
    port: listener.port,
    metrics,
    delivered,
    metric: (name, labels = {}) => metricValue(metrics, name, labels),
    close: async () => {
      await listener.close();
      caps.close();
    },
  };
}
