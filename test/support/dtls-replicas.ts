/**
 * Several in-process DTLS servers ("replicas") sharing one session store, with clients on a simulated
 * network whose datagrams the test routes to any replica. Every record a replica writes is logged with its
 * session (the client's CID), epoch and sequence number, so tests can check that no two records of a
 * session ever share a nonce.
 */
import type { Registry } from 'prom-client';
import { dtlsSchema, type DtlsConfig } from '../../src/config/dtls.js';
import type { Device } from '../../src/devices/device.js';
import { MemoryRegistry } from '../../src/devices/memory-registry.js';
import { dtlsLookups } from '../../src/devices/dtls-lookups.js';
import { readRecord, RecordHeader } from '../../src/dtls/protocol/record.js';
import { DtlsServer } from '../../src/dtls/server/server.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import type { SessionStore } from '../../src/state/session-store.js';
import type { Peer } from '../../src/transport/peer.js';
import { device, metricValue, until } from './dtls-harness.js';
import { DtlsClientCore, type DtlsClientOptions } from './dtls-client.js';

export interface Replica {
  readonly index: number;
  readonly server: DtlsServer;
  readonly metrics: Registry;
  readonly store: SessionStore;
  readonly delivered: { data: Buffer; peer: Peer }[];
  readonly closed: Peer[];
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export interface WrittenRecord {
  replica: number;
  /** The CID the record carries (the client's), '' for plain records. */
  cid: string;
  epoch: number;
  seq: number;
}

export interface ReplicaClient {
  core: DtlsClientCore;
  address: string;
  port: number;
  /** Replica its datagrams go to. */
  to: number;
  /** Datagrams it sent, in order (for replays). */
  sent: Buffer[];
  /** The CID it asked the server to put in records. */
  cid: Buffer;
}

export class Replicas {
  readonly replicas: Replica[] = [];
  readonly written: WrittenRecord[] = [];
  readonly registry: MemoryRegistry;
  private readonly clients = new Map<string, ReplicaClient>();
  private nextPort = 41000;
  private readonly rec = new RecordHeader();

  /** `stores[i]` is replica i's view of the shared store (one object for the memory store). */
  constructor(
    stores: SessionStore[],
    config: Partial<DtlsConfig> = {},
    devices: Device[] = [device('dev1'), device('dev2'), device('dev3')],
  ) {
    this.registry = new MemoryRegistry(devices);
    const parsed = dtlsSchema.parse(config);
    stores.forEach((store, index) => {
      const metrics = createMetricsRegistry(false);
      const log = silentLogger();
      const delivered: Replica['delivered'] = [];
      const closed: Peer[] = [];
      const server = new DtlsServer({
        config: parsed,
        ...dtlsLookups(this.registry),
        log,
        metrics,
        caps: new CapReporter(metrics, log),
        sessionStore: store,
        send: (datagram, port, address) => this.fromServer(index, datagram, address, port),
        onApplicationData: (data, peer) => {
          delivered.push({ data: Buffer.from(data), peer });
          peer.send(Buffer.concat([Buffer.from(`r${index}:`), data]));
        },
        onSessionClosed: (peer) => closed.push(peer),
      });
      this.replicas.push({
        index,
        server,
        metrics,
        store,
        delivered,
        closed,
        metric: (name, labels = {}) => metricValue(metrics, name, labels),
      });
    });
  }

  private fromServer(replica: number, datagram: Buffer, address: string, port: number): void {
    const rec = this.rec;
    const c = this.clients.get(`${address}/${port}`);
    // Records the server writes carry the client's CID (of the client's length).
    const cidLength = c?.cid.length ?? 0;
    let off = 0;
    while (off < datagram.length) {
      off = readRecord(datagram, off, cidLength, rec);
      if (off < 0) break;
      this.written.push({ replica, cid: rec.cid, epoch: rec.epoch, seq: rec.seq });
    }
    if (c) setImmediate(() => c.core.receive(datagram));
  }

  /** A client of device `id` at a fresh port, talking to replica `to`. */
  client(id = 'dev1', to = 0, opts: Partial<DtlsClientOptions> = {}): ReplicaClient {
    const cid = opts.cid ?? Buffer.from(`c-${id}`);
    const c: ReplicaClient = {
      core: undefined as unknown as DtlsClientCore,
      address: '10.1.0.1',
      port: this.nextPort++,
      to,
      sent: [],
      cid,
    };
    c.core = new DtlsClientCore(
      { identity: `id-${id}`, key: Buffer.from(`key-of-${id}`), retransmitMs: 100, ...opts, cid },
      (d) => {
        c.sent.push(d);
        const r = this.replicas[c.to].server;
        const { address, port } = c;
        setImmediate(() => r.receive(d, address, port));
      },
    );
    this.clients.set(`${c.address}/${c.port}`, c);
    return c;
  }

  /** The client wakes behind a new NAT port, and its flow now reaches replica `to`. */
  move(c: ReplicaClient, to: number): void {
    this.clients.delete(`${c.address}/${c.port}`);
    c.port = this.nextPort++;
    c.to = to;
    this.clients.set(`${c.address}/${c.port}`, c);
  }

  /** Sends a datagram to replica `to` as if from address:port (a replay, a forgery). */
  inject(to: number, datagram: Buffer, address: string, port: number): void {
    this.replicas[to].server.receive(datagram, address, port);
  }

  /**
   * Sends `text` and waits for the reply (the replica that answered prefixes it with `r<index>:`); with
   * `retransmitMs`, sends it again (a new record) until answered, as a CoAP device does.
   */
  async request(c: ReplicaClient, text: string, timeoutMs = 2000, retransmitMs = 0): Promise<string> {
    let again: NodeJS.Timeout | undefined;
    const reply = new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => {
        clearInterval(again);
        reject(new Error(`no reply to ${text}`));
      }, timeoutMs);
      c.core.onData = (d) => {
        clearTimeout(t);
        clearInterval(again);
        c.core.onData = undefined;
        resolve(d.toString());
      };
    });
    c.core.write(Buffer.from(text));
    if (retransmitMs > 0) again = setInterval(() => c.core.write(Buffer.from(text)), retransmitMs);
    return reply;
  }

  /** Resolves once replica `r` has stored device `id`'s session in the shared store. */
  stored(r: number, id = 'dev1'): Promise<void> {
    return until(
      () => (this.replicas[r].server.table.byDevice(id)?.share?.fence ?? 0) > 0,
      5000,
      `${id} stored`,
    );
  }

  /** Resolves once replica `r` no longer holds device `id`'s session (it heard the session moved or ended). */
  released(r: number, id = 'dev1'): Promise<void> {
    return until(
      () => this.replicas[r].server.table.byDevice(id) === undefined,
      5000,
      `${id} released by r${r}`,
    );
  }

  /** Records a replica wrote more than once with the same session, epoch and sequence number. */
  nonceReuse(): WrittenRecord[] {
    const seen = new Set<string>();
    const dup: WrittenRecord[] = [];
    for (const w of this.written) {
      if (w.epoch === 0) continue;
      const k = `${w.cid}/${w.epoch}/${w.seq}`;
      if (seen.has(k)) dup.push(w);
      seen.add(k);
    }
    return dup;
  }

  async close(): Promise<void> {
    for (const r of this.replicas) await r.server.close();
  }
}
