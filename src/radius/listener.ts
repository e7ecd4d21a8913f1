/**
 * The RADIUS accounting listener: takes Accounting-Requests from the carrier's PGW/GGSN (`radius.clients`),
 * refuses packets from other addresses or with a wrong authenticator (silently, as RFC 2866 §2 says), keeps
 * the IP → SIM table from Start, Interim-Update and Stop, and answers each request it took with an
 * Accounting-Response once the table holds the change (so the NAS retransmits when the store failed).
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import type { RadiusConfig } from '../config/udp.js';
import type { Logger } from '../ops/logger.js';
import { counterFromLabels, gaugeFrom, type MetricsRegistry } from '../ops/metrics.js';
import { socketErrorLog } from '../ops/socket-errors.js';
import type { SimSession, SimTable } from '../state/sim-table.js';
import { bindUdp } from '../transport/udp.js';
import {
  AccountingRefusal,
  accountingResponse,
  imeiOf,
  readAccountingRequest,
  type AccountingRecord,
} from './accounting.js';
import { RadiusClients } from './clients.js';

export interface RadiusListenerOptions {
  config: RadiusConfig;
  baseDir: string;
  table: SimTable;
  log: Logger;
  metrics: MetricsRegistry;
  /** Kernel buffer size for the socket. */
  socketBufferBytes: number;
}

const STORE_ERROR_LOG_MS = 30_000;

export class RadiusListener {
  /** `<type>\0<outcome>` → count. */
  private readonly requests = new Map<string, number>();
  private lastStoreError = 0;
  private lastRefusalLog = 0;
  private refusedSinceLog = 0;

  private constructor(
    readonly socket: Socket,
    private readonly clients: RadiusClients,
    private readonly opts: RadiusListenerOptions,
  ) {
    const logError = socketErrorLog(opts.log, 'radius');
    socket.on('error', logError);
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.receive(msg, rinfo));
    counterFromLabels(
      opts.metrics,
      'cellgate_radius_requests_total',
      'RADIUS accounting requests by status type (start, stop, interim, on, off, other, unknown) and outcome.',
      ['type', 'outcome'],
      () => [...this.requests].map(([k, v]) => [k.split('\0'), v] as const),
    );
    gaugeFrom(opts.metrics, 'cellgate_radius_clients', 'RADIUS clients configured.', () => clients.size);
  }

  static async start(opts: RadiusListenerOptions): Promise<RadiusListener> {
    const clients = new RadiusClients(opts.config.clients, opts.baseDir);
    const socket = await bindUdp({
      bind: opts.config.bind,
      port: opts.config.port,
      bufferBytes: opts.socketBufferBytes,
    });
    return new RadiusListener(socket, clients, opts);
  }

  get port(): number {
    return this.socket.address().port;
  }

  private count(type: string, outcome: string): void {
    const k = `${type}\0${outcome}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  private receive(packet: Buffer, rinfo: RemoteInfo): void {
    const secret = this.clients.secretFor(rinfo.address);
    if (secret === undefined) {
      this.count('unknown', 'unknown_client');
      this.opts.log.debug({ remote: rinfo.address }, 'radius: packet from an address that is not a client');
      return;
    }
    let record: AccountingRecord;
    try {
      record = readAccountingRequest(packet, secret);
    } catch (err) {
      // Anything the codec library throws beyond its own checks is a packet it could not read.
      const reason = err instanceof AccountingRefusal ? err.reason : 'malformed';
      this.count('unknown', reason);
      if (!(err instanceof AccountingRefusal)) return;
      if (err.reason === 'bad_authenticator') {
        this.refusedSinceLog++;
        const now = Date.now();
        if (now - this.lastRefusalLog >= STORE_ERROR_LOG_MS) {
          this.lastRefusalLog = now;
          this.opts.log.warn(
            { remote: rinfo.address, refused: this.refusedSinceLog },
            'radius: request authenticator does not match the shared secret (wrong secret?)',
          );
          this.refusedSinceLog = 0;
        }
      }
      return;
    }
    const reply = () => this.socket.send(accountingResponse(packet, secret), rinfo.port, rinfo.address);
    this.apply(record).then(
      (outcome) => {
        this.count(record.status, outcome);
        reply();
      },
      (err: unknown) => {
        this.count(record.status, 'store_failed');
        const now = Date.now();
        if (now - this.lastStoreError >= STORE_ERROR_LOG_MS) {
          this.lastStoreError = now;
          this.opts.log.warn(
            { err: (err as Error).message },
            'radius: IP → SIM table not updated; not answered',
          );
        }
      },
    );
  }

  /** Updates the table; resolves to the outcome label. */
  private async apply(r: AccountingRecord): Promise<string> {
    const table = this.opts.table;
    if (r.status === 'start' || r.status === 'interim') {
      if (r.framedIp === undefined) return 'no_address';
      const session: SimSession = {
        imsi: r.imsi,
        imei: r.imeisv === undefined ? undefined : imeiOf(r.imeisv),
        imeisv: r.imeisv,
        msisdn: r.msisdn,
        userName: r.userName,
        sessionId: r.sessionId,
        updatedAt: Date.now(),
      };
      await table.put(r.framedIp, session, this.opts.config.sessions.ttlSeconds * 1000);
      if (this.opts.log.isLevelEnabled('debug'))
        this.opts.log.debug({ ip: r.framedIp, imsi: r.imsi, status: r.status }, 'radius: session recorded');
      return 'recorded';
    }
    if (r.status === 'stop') {
      if (r.framedIp === undefined) return 'no_address';
      return (await table.remove(r.framedIp, r.sessionId)) ? 'removed' : 'not_found';
    }
    return 'ignored';
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
