/**
 * The DTLS 1.2 server (PSK, ECDHE-PSK, ECDHE-ECDSA with X.509 certificates or raw public keys): takes every datagram of the DTLS socket, finds the session of each record (by
 * Connection ID first, then by source address), authenticates and decrypts it, and hands application data
 * to the CoAP layer with the session as its Peer. Malformed and unauthenticated records are dropped
 * silently (RFC 6347 §4.1.2.7) and counted. Handshakes are run by the Handshaker.
 *
 * Timers: one coarse sweep per second expires idle sessions and stale handshakes; a retransmission timer
 * exists only while a handshake flight is outstanding. An idle session holds no timer, closure or buffer.
 */
import type { DtlsConfig } from '../../config/dtls.js';
import type { Logger } from '../../ops/logger.js';
import type { CapReporter, MetricsRegistry } from '../../ops/metrics.js';
import type { Peer } from '../../transport/peer.js';
import { encodeAlert, endsSession, parseAlert } from '../protocol/alert.js';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, MAX_SEQUENCE } from '../protocol/constants.js';
import type { CipherSuite } from '../crypto/cipher-suites.js';
import { openRecord, sealRecord, Side } from '../crypto/record-protection.js';
import { awsIotCertificateStatus, type CertificateStatus } from '../certificates/aws-iot-status.js';
import { DtlsCredentials } from '../certificates/credentials.js';
import type { CertificateLookup, PskLookup } from '../credential-lookup.js';
import { Handshaker, type HandshakeHost } from './handshaker.js';
import { KeyStore } from './key-store.js';
import type { Handshake } from './handshake-state.js';
import { DtlsStats, registerDtlsMetrics } from './metrics.js';
import { readRecord, RecordHeader } from '../protocol/record.js';
import { replayFresh, replayMark } from './replay-window.js';
import { DtlsSession } from './session.js';
import { Origin } from './origin.js';
import { addressKey, MemorySessionTable, type AddressKey, type SessionTable } from './session-table.js';
import { SessionSharing, type SharingHost } from './sharing.js';
import type { SessionStore } from '../../state/session-store.js';

export interface DtlsServerOptions {
  config: DtlsConfig;
  /** The key and device of a PSK identity (as pion/dtls's PSKCallback); undefined when no device has it. */
  pskLookup: PskLookup;
  /** The device a certificate or raw public key names (asked by certificate handshakes only). */
  certificateLookup: CertificateLookup;
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
  /** Writes one datagram on the DTLS UDP socket. */
  send(datagram: Buffer, port: number, address: string): void;
  /** One decrypted record's payload (a CoAP message) from an established session. */
  onApplicationData(data: Buffer, peer: Peer): void;
  /** A session ended (close_notify, idle, replaced, evicted, key change, shutdown, moved to another replica). */
  onSessionClosed?(peer: Peer): void;
  /**
   * Where sessions are shared with other replicas (`state.store: redis`); without one, the session table
   * of this process is the only one.
   */
  sessionStore?: SessionStore;
  /** Who to ask about X.509 device certificates; by default AWS IoT Core when `dtls.awsIot.enabled`. */
  certificateStatus?: CertificateStatus;
}

const SWEEP_MS = 1000;

function onSweep(server: DtlsServer): void {
  server.sweep();
}

const CLOSE_NOTIFY = encodeAlert(AlertLevel.warning, AlertDescription.closeNotify);

/** How long a graceful close waits for the last checkpoints of shared sessions. */
const CLOSE_FLUSH_MS = 2000;

export class DtlsServer implements HandshakeHost, SharingHost {
  readonly table: SessionTable = new MemorySessionTable();
  readonly stats = new DtlsStats();
  readonly keys = new KeyStore();
  readonly pskLookup: PskLookup;
  readonly certificateLookup: CertificateLookup;
  readonly credentials: DtlsCredentials;
  readonly certificateStatus: CertificateStatus | undefined;
  readonly log: Logger;
  readonly caps: CapReporter;
  private readonly config: DtlsConfig;
  private readonly handshaker: Handshaker;
  private readonly rec = new RecordHeader();
  private readonly replayRec = new RecordHeader();
  /** Where the socket's datagram being handled came from, and where a record fed back in came from. */
  private readonly origin = new Origin();
  private readonly replayOrigin = new Origin();
  private readonly cidLength: number;
  private readonly t0 = Date.now();
  private received = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly retireMetrics: () => void;
  private readonly output: DtlsServerOptions['send'];
  private readonly deliver: DtlsServerOptions['onApplicationData'];
  private readonly onClosed: DtlsServerOptions['onSessionClosed'];
  /** Sessions shared with other replicas through a store; undefined when this process is alone. */
  readonly sharing: SessionSharing | undefined;

  constructor(opts: DtlsServerOptions) {
    this.config = opts.config;
    this.pskLookup = opts.pskLookup;
    this.certificateLookup = opts.certificateLookup;
    this.log = opts.log;
    this.caps = opts.caps;
    this.output = opts.send;
    this.deliver = opts.onApplicationData;
    this.onClosed = opts.onSessionClosed;
    this.cidLength = opts.config.connectionIdLength;
    this.credentials = new DtlsCredentials(opts.config, opts.log, () =>
      opts.caps.hit('dtls_verified_certificates'),
    );
    this.certificateStatus =
      opts.certificateStatus ??
      (opts.config.awsIot.enabled
        ? awsIotCertificateStatus(opts.config.awsIot, () => opts.caps.hit('dtls_aws_iot_answers'))
        : undefined);
    this.handshaker = new Handshaker(this, opts.config);
    this.sharing = opts.sessionStore ? new SessionSharing(this, opts.sessionStore, opts.log) : undefined;
    this.sharing?.registerMetrics(opts.metrics);
    this.retireMetrics = registerDtlsMetrics(opts.metrics, this.stats, {
      sessions: () => this.table.size,
      handshakes: () => this.handshaker.active,
      reassemblyBytes: () => this.handshaker.reassemblyBytes,
    });
    this.sweeper = setInterval(onSweep, SWEEP_MS, this);
    this.sweeper.unref();
  }

  /** Established sessions. */
  get sessionCount(): number {
    return this.table.size;
  }

  /** Handshakes in progress. */
  get handshakeCount(): number {
    return this.handshaker.active;
  }

  /** Datagrams received so far: the number of the one being handled. */
  get datagrams(): number {
    return this.received;
  }

  /** Every datagram from the DTLS socket. */
  receive(datagram: Buffer, address: string, port: number): void {
    // A send that loops straight back (in-process clients) can hand in a datagram while one is being
    // handled: that one gets an origin of its own, so the outer one's stays as it was.
    const origin = this.origin.busy ? new Origin() : this.origin;
    origin.set(address, port, ++this.received);
    origin.busy = true;
    const rec = this.rec;
    const stats = this.stats;
    let off = 0;
    const sharing = this.sharing;
    while (off < datagram.length) {
      off = readRecord(datagram, off, this.cidLength, rec);
      if (off < 0) {
        stats.recordsDropped.malformed++;
        break;
      }
      stats.recordsIn++;
      if (rec.type === ContentType.tls12Cid) {
        const s = this.cidLength > 0 ? this.table.byCid(rec.cid) : undefined;
        if (s) {
          if (sharing) sharing.hits++;
          this.protectedRecord(s, datagram, rec, origin);
        } else if (sharing && this.cidLength > 0) sharing.miss(datagram, rec, off, origin);
        else stats.recordsDropped.unknown_cid++;
        continue;
      }
      const bound = this.table.byAddress(origin.addressKey);
      if (rec.epoch === 0) {
        origin.bound = bound;
        this.plaintextRecord(datagram, rec, origin);
      } else if (bound) this.protectedRecord(bound, datagram, rec, origin);
      else stats.recordsDropped.no_session++;
    }
    origin.busy = false;
  }

  /**
   * Ends the session and handshakes of a device (removed from the registry, or its key changed), here and,
   * with shared sessions, on every replica — except a shared session made with the credential tagged `keep`.
   */
  endSessionsOf(deviceId: string, keep?: number): number {
    this.sharing?.removeDevice(deviceId, keep);
    let n = this.handshaker.abandon('closed', deviceId);
    const s = this.table.byDevice(deviceId);
    // A shared session made with the device's current credential (`keep`, see credentialTag) stays.
    if (s && (keep === undefined || s.share?.credential !== keep)) {
      this.sendRecord(s, ContentType.alert, CLOSE_NOTIFY);
      this.endSession(s);
      n++;
    }
    return n;
  }

  /**
   * Sends close_notify to every session, drops all state and stops the timers. Sessions shared through a
   * store are not closed: they are checkpointed and live on at the replicas their devices reach next.
   */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.credentials.close();
    this.handshaker.abandon('closed');
    const sharing = this.sharing;
    if (sharing) await sharing.flushAll(this.table.byActivity(), CLOSE_FLUSH_MS);
    for (const s of this.table.byActivity()) {
      if (!s.share) this.sendRecord(s, ContentType.alert, CLOSE_NOTIFY);
      this.endSession(s);
    }
    this.retireMetrics();
  }

  /** Expires idle sessions and stale handshakes (called every second). */
  sweep(): void {
    const now = this.clock();
    const limit = now - Math.ceil(this.config.idleTimeoutMs / 1000);
    for (const s of this.table.byActivity()) {
      if (s.lastActive > limit) break;
      this.endSession(s);
    }
    this.handshaker.sweep(Date.now());
    this.sharing?.flush();
  }

  // HandshakeHost

  transmit(datagram: Buffer, address: string, port: number): void {
    try {
      this.output(datagram, port, address);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'DTLS send failed');
    }
  }

  sendRecord(s: DtlsSession, type: number, content: Buffer): void {
    const slot = s.keySlot;
    if (slot < 0 || !s.suite) return;
    if (content.length > s.sendLimit) {
      this.stats.recordsDropped.too_large++;
      return;
    }
    if (s.writeSeq >= s.writeLimit && !this.sharing?.nextBlock(s)) {
      if (s.writeSeq > MAX_SEQUENCE) this.endSession(s);
      return;
    }
    const seq = s.writeSeq++;
    if (seq === s.renewAt) this.sharing?.renew(s);
    this.stats.recordsOut++;
    this.transmit(
      sealRecord(
        s.suite,
        this.keys.slab(slot),
        this.keys.offset(slot),
        Side.Server,
        type,
        DTLS_1_2,
        1,
        seq,
        s.peerCid,
        content,
      ),
      s.address,
      s.port,
    );
  }

  unbind(s: DtlsSession, key: AddressKey): void {
    // Without a Connection ID the client cannot reach its old session any more.
    if (s.cid === '') this.endSession(s);
    else this.table.unbindAddress(key, s);
  }

  /** Ends the device's earlier session here, or the one idle the longest when the table is full. */
  private makeRoom(deviceId: string): void {
    const old = this.table.byDevice(deviceId);
    if (old) this.endSession(old);
    else if (this.table.size >= this.config.maxSessions) {
      const oldest = this.table.byActivity().next();
      if (!oldest.done) {
        this.endSession(oldest.value);
        this.caps.hit('dtls_sessions');
      }
    }
  }

  establish(s: DtlsSession): Promise<void> | undefined {
    const id = s.deviceId as string;
    this.makeRoom(id);
    s.lastActive = this.clock();
    // A session with a Connection ID is found by it from now on, wherever the client moves: no ClientHello
    // reaches it any more, so it need not remember its own.
    if (s.cid !== '') {
      this.table.unbindAddress(addressKey(s.address, s.port), s);
      s.helloId = '';
    }
    this.table.establish(s);
    this.stats.handshakesCompleted++;
    this.log.debug(
      { device: id, address: s.address, port: s.port, cid: s.cid !== '' },
      'DTLS session established',
    );
    return this.sharing?.established(s);
  }

  replay(s: DtlsSession, record: Buffer, datagram: number): void {
    this.feed(s, record, s.address, s.port, datagram);
  }

  private clock(): number {
    return ((Date.now() - this.t0) / 1000) | 0;
  }

  private plaintextRecord(buf: Buffer, rec: RecordHeader, origin: Origin): void {
    switch (rec.type) {
      case ContentType.handshake:
        this.handshaker.plaintextRecord(buf, rec, origin);
        return;
      case ContentType.alert: {
        // Unauthenticated: it may end a handshake, never an established session.
        const bound = origin.bound;
        const hs = bound?.hs;
        const alert = parseAlert(buf.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength));
        if (bound && hs && alert && endsSession(alert)) this.handshaker.peerAlert(bound, hs);
        return;
      }
      case ContentType.changeCipherSpec:
        return;
      default:
        this.stats.recordsDropped.unexpected++;
    }
  }

  private protectedRecord(s: DtlsSession, buf: Buffer, rec: RecordHeader, origin: Origin): void {
    const stats = this.stats;
    if (rec.epoch !== 1) {
      stats.recordsDropped.unexpected++;
      return;
    }
    const hs = s.hs;
    const slot = s.keySlot;
    if (slot < 0) {
      if (hs) this.handshaker.early(hs, buf, rec);
      else stats.recordsDropped.no_session++;
      return;
    }
    if (!replayFresh(s, rec.seq)) {
      stats.recordsDropped.replay++;
      return;
    }
    const content = openRecord(
      s.suite as CipherSuite,
      this.keys.slab(slot),
      this.keys.offset(slot),
      Side.Client,
      buf,
      rec,
    );
    if (!content) {
      if (hs) this.handshaker.unauthenticated(s, hs, origin.datagram);
      else stats.recordsDropped.bad_mac++;
      return;
    }
    const newest = replayMark(s, rec.seq);
    if (hs === null) this.active(s, rec, newest, origin);
    switch (rec.type) {
      case ContentType.applicationData:
        if (hs) stats.recordsDropped.unexpected++;
        else this.applicationData(s, content);
        return;
      case ContentType.handshake:
        if (hs) this.handshaker.protectedHandshake(s, hs, content);
        else this.handshaker.afterHandshake(s, content);
        return;
      case ContentType.alert:
        this.alert(s, hs, content);
        return;
      default:
        stats.recordsDropped.unexpected++;
    }
  }

  /** An authenticated record of an established session: activity, and the address move of RFC 9146 §6. */
  private active(s: DtlsSession, rec: RecordHeader, newest: boolean, origin: Origin): void {
    if (newest && rec.cid !== '' && (s.port !== origin.port || s.address !== origin.address)) {
      s.address = origin.address;
      s.port = origin.port;
      this.stats.cidAddressUpdates++;
    }
    const now = this.clock();
    if (s.lastActive !== now) {
      s.lastActive = now;
      this.table.touch(s);
      this.sharing?.active(s);
    }
  }

  private applicationData(s: DtlsSession, content: Buffer): void {
    // The client got flight 6.
    s.finishedSeq = -1;
    try {
      this.deliver(content, s);
    } catch (err) {
      this.log.error({ err }, 'application data handler failed');
    }
  }

  private alert(s: DtlsSession, hs: Handshake | null, content: Buffer): void {
    const alert = parseAlert(content);
    if (!alert) {
      this.stats.recordsDropped.malformed++;
      return;
    }
    if (!endsSession(alert)) return;
    if (hs) {
      this.handshaker.peerAlert(s, hs);
      return;
    }
    if (alert.description === AlertDescription.closeNotify)
      this.sendRecord(s, ContentType.alert, CLOSE_NOTIFY);
    this.sharing?.ended(s);
    this.endSession(s);
  }

  // SharingHost

  adopt(s: DtlsSession): void {
    this.makeRoom(s.deviceId as string);
    s.lastActive = this.clock();
    this.table.bindCid(s);
    this.table.establish(s);
  }

  /** A record held back; `datagram` is the number of the datagram it came in (0: not known). */
  feed(s: DtlsSession, record: Buffer, address: string, port: number, datagram = 0): void {
    if (readRecord(record, 0, this.cidLength, this.replayRec) <= 0) return;
    const origin = this.replayOrigin.busy ? new Origin() : this.replayOrigin;
    origin.set(address, port, datagram);
    origin.busy = true;
    this.protectedRecord(s, record, this.replayRec, origin);
    origin.busy = false;
  }

  drop(s: DtlsSession): void {
    this.endSession(s);
  }

  discard(s: DtlsSession): void {
    if (s.keySlot >= 0) this.keys.release(s.keySlot);
    s.keySlot = -1;
    this.table.remove(s);
  }

  private endSession(s: DtlsSession): void {
    if (s.keySlot < 0) return;
    this.discard(s);
    if (this.onClosed) {
      try {
        this.onClosed(s);
      } catch (err) {
        this.log.error({ err }, 'session close handler failed');
      }
    }
  }
}
