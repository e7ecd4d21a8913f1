/**
 * DTLS sessions shared by replicas through a SessionStore (src/state): the local session table becomes a
 * bounded cache in front of the store.
 *
 * - A session is stored when its handshake completes, with the write sequence numbers up to the end of
 *   its first block leased to this replica.
 * - A record with a Connection ID this replica does not hold is a take-over: one store call claims the
 *   session (new fence, fresh write block, the replay floor raised to the record's sequence number); the
 *   record is authenticated with the keys it returned and answered at once. Records of the same Connection
 *   ID that arrive meanwhile wait for the claim (a few per session, a cap on claims in flight). A record
 *   that does not authenticate undoes the claim.
 * - Owned sessions never touch the store per record: a further write block is leased in the background
 *   when half the current one is used; the highest accepted client sequence number is checkpointed at most
 *   once a second per active session (which also keeps the session alive in the store).
 * - A replica that hears that its session moved (a higher fence) or ended drops its copy; so does one whose
 *   lease or checkpoint is refused.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../ops/logger.js';
import { KeyedLogLimit } from '../../ops/rate-limit-log.js';
import type { CapReporter, MetricsRegistry } from '../../ops/metrics.js';
import { counterFrom } from '../../ops/metrics.js';
import type { SessionClaim, SessionStore, SharedSession } from '../../state/session-store.js';
import { MAX_SEQUENCE } from '../protocol/constants.js';
import { CIPHER_SUITES } from '../crypto/cipher-suites.js';
import type { PskLookup } from '../credential-lookup.js';
import type { KeyStore } from './key-store.js';
import { SLOT_BYTES } from './key-store.js';
import type { DtlsStats } from './metrics.js';
import type { RecordHeader } from '../protocol/record.js';
import type { Origin } from './origin.js';
import { ShareState } from './share-state.js';
import { cidPeerKey, DtlsSession, type SessionHost } from './session.js';
import type { SessionTable } from './session-table.js';

/** Claims in flight at once; past it, records of unknown Connection IDs are dropped (and counted). */
const MAX_CLAIMS = 1024;
/** Records of one Connection ID held while its claim is in flight. */
const MAX_HELD = 4;
const LOG_INTERVAL_MS = 30_000;

/** A tag of a PSK (the first 4 bytes of its SHA-256), or undefined without one. */
export function credentialTag(key: Buffer | undefined): number | undefined {
  return key ? createHash('sha256').update(key).digest().readUInt32BE(0) : undefined;
}

/** What the sharing needs from the DTLS server. */
export interface SharingHost extends SessionHost {
  readonly table: SessionTable;
  readonly keys: KeyStore;
  readonly stats: DtlsStats;
  readonly caps: CapReporter;
  readonly pskLookup: PskLookup;
  /** Puts a session taken over in service (ends a stale local one of the same device). */
  adopt(s: DtlsSession): void;
  /** Authenticates and handles one record of a session (as if just received). */
  feed(s: DtlsSession, record: Buffer, address: string, port: number): void;
  /** Forgets a session here only (it lives on in the store or elsewhere), telling the layers above. */
  drop(s: DtlsSession): void;
}

export const TAKEOVER_OUTCOMES = [
  'ok',
  'unknown',
  'replay',
  'bad_mac',
  'store_error',
  'cap',
  'superseded',
] as const;
type TakeoverOutcome = (typeof TAKEOVER_OUTCOMES)[number];

interface Held {
  records: { buf: Buffer; address: string; port: number }[];
  /**
   * The highest fence another replica announced for this Connection ID while the claim was in flight
   * (Infinity: the session ended). Announcements travel apart from store answers, so one can arrive first.
   */
  heard: number;
}

export class SessionSharing {
  /** CID records found in the local table / not found (looked up in the store). */
  hits = 0;
  misses = 0;
  readonly takeovers: Record<TakeoverOutcome, number> = {
    ok: 0,
    unknown: 0,
    replay: 0,
    bad_mac: 0,
    store_error: 0,
    cap: 0,
    superseded: 0,
  };
  readonly revoked = { moved: 0, ended: 0, lost: 0 };
  /** Records not sent because the next write block was not leased yet. */
  leaseWaits = 0;
  /** Sessions kept in this process only: their Connection ID was another replica's already. */
  cidTaken = 0;
  private readonly held = new Map<string, Held>();
  private dirty = new Set<DtlsSession>();
  private readonly half: number;
  /** Store failures are logged once per interval, saying how many were held back. */
  private readonly errorLog = new KeyedLogLimit(LOG_INTERVAL_MS, 1);

  constructor(
    private readonly host: SharingHost,
    readonly store: SessionStore,
    private readonly log: Logger,
  ) {
    this.half = store.blockSize / 2;
    store.onRevoked((id, fence, why) => this.revokedElsewhere(id, fence, why));
  }

  registerMetrics(r: MetricsRegistry): void {
    counterFrom(
      r,
      'cellgate_dtls_takeovers_total',
      'Records with a Connection ID this replica did not hold, looked up in the session store, by outcome: ok (taken over and answered), unknown (not in the store), replay (at or below what an owner accepted), bad_mac, store_error (store unreachable or timed out: the datagram is dropped), cap (too many in flight), superseded (another replica claimed it later and said so before this claim was answered: the records are dropped).',
      () => this.takeovers,
      'outcome',
    );
    counterFrom(
      r,
      'cellgate_dtls_session_cache_total',
      'Records with a Connection ID, by whether the session was in the local table (hit) or had to be looked up in the store (miss).',
      () => ({ hit: this.hits, miss: this.misses }),
      'result',
    );
    counterFrom(
      r,
      'cellgate_dtls_sessions_revoked_total',
      'Sessions this replica dropped because another replica took them over (moved), they ended everywhere (ended), or the store refused its lease (lost).',
      () => this.revoked,
      'reason',
    );
    counterFrom(
      r,
      'cellgate_dtls_sessions_unshared_total',
      'Sessions kept in this process only because their Connection ID was already another replica’s session’s (rare: 48 random bits).',
      () => this.cidTaken,
    );
    counterFrom(
      r,
      'cellgate_dtls_lease_waits_total',
      'Records not sent because the session’s next write sequence block was not leased yet (store slow or down).',
      () => this.leaseWaits,
    );
  }

  private logError(err: unknown, what: string): void {
    const held = this.errorLog.take('store');
    if (held === undefined) return;
    this.log.warn(
      { err: (err as Error).message, suppressed: held || undefined },
      `session store: ${what} failed`,
    );
  }

  // Sessions this replica made.

  /**
   * The handshake completed: store the session, capping writes at the end of the block asked for. Settles
   * (never rejects) once the first store attempt did, whatever its outcome; undefined for a session that
   * cannot move (no Connection ID).
   */
  established(s: DtlsSession): Promise<void> | undefined {
    if (s.cid === '') return undefined; // found by address only: it cannot move to another replica
    const share = new ShareState();
    s.share = share;
    // Until stored, write nothing past the first block (the store will know it as leased to this session).
    s.writeLimit = s.writeSeq + this.store.blockSize;
    const stored = (credential: number): Promise<void> | undefined => {
      share.credential = credential;
      return s.keySlot >= 0 && s.share === share ? this.create(s) : undefined;
    };
    return this.host.pskLookup(s.pskIdentity ?? '').then(
      (found) => stored(credentialTag(found?.key) ?? 0),
      () => stored(0),
    );
  }

  private create(s: DtlsSession): Promise<void> {
    const share = s.share as ShareState;
    const end = s.writeSeq + this.store.blockSize;
    // Until the store answers, write nothing past what it will know as leased to this session.
    if (s.writeLimit > end) s.writeLimit = end;
    share.busy = true;
    return this.store.create(this.shared(s), s.writeSeq, s.top, share.token).then(
      (lease) => {
        share.busy = false;
        if (s.keySlot < 0) return;
        if (lease === 'moved') return this.lose(s);
        if (lease === 'taken') {
          // Another replica's session has this Connection ID: this one cannot move, but works here.
          this.cidTaken++;
          s.share = undefined;
          s.writeLimit = MAX_SEQUENCE + 1;
          return;
        }
        share.fence = lease.fence;
        share.storedTop = s.top;
        s.writeLimit = lease.end;
        s.renewAt = lease.end - this.half;
      },
      (err: unknown) => {
        share.busy = false;
        this.logError(err, 'storing a new session');
        // Tried again at the next checkpoint; until then the cap stays (the write may have landed).
        if (s.keySlot >= 0) this.dirty.add(s);
      },
    );
  }

  private shared(s: DtlsSession): SharedSession {
    const keys = this.host.keys;
    const at = keys.offset(s.keySlot);
    return {
      id: s.cid,
      deviceId: s.deviceId as string,
      pskIdentity: s.pskIdentity ?? '',
      credentialKind: s.credential ?? 'psk',
      fingerprint: s.fingerprint ?? '',
      suite: s.suite?.id ?? 0,
      peerCid: s.peerCid,
      sendLimit: s.sendLimit,
      keys: Buffer.from(keys.slab(s.keySlot).subarray(at, at + SLOT_BYTES)),
      credential: (s.share as ShareState).credential,
    };
  }

  // The write path.

  /** The session used up its write block: switch to the next one if leased (true), else ask for it. */
  nextBlock(s: DtlsSession): boolean {
    const share = s.share;
    if (!share) return false;
    if (share.nextStart >= 0) {
      s.writeSeq = share.nextStart;
      s.writeLimit = share.nextEnd;
      s.renewAt = share.nextStart + this.half;
      share.nextStart = -1;
      return true;
    }
    this.leaseWaits++;
    this.renew(s);
    return false;
  }

  /** Leases the next write block in the background (half of the current one is used). */
  renew(s: DtlsSession): void {
    const share = s.share;
    if (!share || share.leasing || share.fence === 0 || share.nextStart >= 0) return;
    share.leasing = true;
    this.store.lease(s.cid, share.fence).then(
      (lease) => {
        share.leasing = false;
        if (s.keySlot < 0) return;
        if (!lease) return this.lose(s);
        share.nextStart = lease.start;
        share.nextEnd = lease.end;
      },
      (err: unknown) => {
        share.leasing = false;
        this.logError(err, 'leasing write sequence numbers');
      },
    );
  }

  // Checkpoints.

  /** The session accepted records in a new second: checkpoint it at the next flush. */
  active(s: DtlsSession): void {
    if (s.share) this.dirty.add(s);
  }

  /** Checkpoints the sessions active since the last flush (called every second). */
  flush(): Promise<void>[] {
    if (this.dirty.size === 0) return [];
    const batch = this.dirty;
    this.dirty = new Set();
    const calls: Promise<void>[] = [];
    for (const s of batch) {
      const share = s.share;
      if (!share || s.keySlot < 0) continue;
      if (share.busy) {
        this.dirty.add(s);
        continue;
      }
      if (share.fence === 0) {
        this.create(s);
        continue;
      }
      if (s.top <= share.storedTop) continue;
      calls.push(this.checkpoint(s, share));
    }
    return calls;
  }

  private checkpoint(s: DtlsSession, share: ShareState): Promise<void> {
    const top = s.top;
    share.busy = true;
    return this.store.checkpoint(s.cid, s.deviceId as string, share.fence, top).then(
      (ok) => {
        share.busy = false;
        if (s.keySlot < 0) return;
        if (!ok) return this.lose(s);
        if (top > share.storedTop) share.storedTop = top;
      },
      (err: unknown) => {
        share.busy = false;
        this.logError(err, 'checkpointing a session');
        if (s.keySlot >= 0) this.dirty.add(s);
      },
    );
  }

  /** Checkpoints every session with records the store has not seen (graceful shutdown). */
  async flushAll(sessions: Iterable<DtlsSession>, timeoutMs: number): Promise<void> {
    for (const s of sessions) if (s.share && s.top > s.share.storedTop) this.dirty.add(s);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.flush()),
      new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  // Endings.

  /** The session ended for good (close_notify, fatal alert): remove it from the store too. */
  ended(s: DtlsSession): void {
    if (!s.share || s.deviceId === undefined) return;
    this.store.remove(s.cid, s.deviceId).catch((err: unknown) => this.logError(err, 'removing a session'));
  }

  /** A device was removed or re-keyed: its session ends on every replica, unless made with `keep`. */
  removeDevice(deviceId: string, keep?: number): void {
    this.store.removeDevice(deviceId, keep).catch((err: unknown) => this.logError(err, 'removing a device'));
  }

  private lose(s: DtlsSession): void {
    this.revoked.lost++;
    this.host.drop(s);
  }

  private revokedElsewhere(id: string, fence: number, why: 'moved' | 'ended'): void {
    const held = this.held.get(id);
    if (held) held.heard = Math.max(held.heard, why === 'ended' ? Infinity : fence);
    const s = this.host.table.byCid(id);
    if (!s || !s.share || s.hs) return;
    if (why === 'moved' && fence <= s.share.fence) return;
    this.revoked[why]++;
    this.host.drop(s);
  }

  // Take-overs.

  /** A record with a Connection ID not in the local table. */
  miss(datagram: Buffer, rec: RecordHeader, end: number, origin: Origin): void {
    const { address, port } = origin;
    this.misses++;
    const stats = this.host.stats;
    if (rec.epoch !== 1) {
      stats.recordsDropped.unknown_cid++;
      return;
    }
    const record = datagram.subarray(rec.start, end);
    const held = this.held.get(rec.cid);
    if (held) {
      if (held.records.length < MAX_HELD) held.records.push({ buf: record, address, port });
      else this.capped('dtls_takeover_records');
      return;
    }
    if (this.held.size >= MAX_CLAIMS) {
      this.capped('dtls_takeovers');
      return;
    }
    const h: Held = { records: [{ buf: record, address, port }], heard: 0 };
    const cid = rec.cid;
    this.held.set(cid, h);
    this.store.claim(cid, rec.seq).then(
      (claim) => this.claimed(cid, h, claim),
      (err: unknown) => {
        this.held.delete(cid);
        this.takeovers.store_error++;
        this.logError(err, 'taking a session over');
      },
    );
  }

  private capped(cap: string): void {
    this.takeovers.cap++;
    this.host.caps.hit(cap);
  }

  private claimed(cid: string, h: Held, claim: SessionClaim | 'unknown' | 'replay'): void {
    this.held.delete(cid);
    const stats = this.host.stats;
    if (claim === 'unknown') {
      this.takeovers.unknown++;
      stats.recordsDropped.unknown_cid += h.records.length;
      return;
    }
    if (claim === 'replay') {
      this.takeovers.replay++;
      stats.recordsDropped.replay += h.records.length;
      return;
    }
    if (h.heard > claim.lease.fence) {
      // Another replica took the session after this claim (or it ended) and said so before this answer came:
      // the claim is stale. Its records are dropped; the device's retransmission reaches the owner.
      this.takeovers.superseded++;
      stats.recordsDropped.no_session += h.records.length;
      return;
    }
    const existing = this.host.table.byCid(cid);
    if (existing) {
      // A handshake here gave out the same Connection ID meanwhile: keep that session.
      this.store.unclaim(cid, claim).catch(() => undefined);
      for (const r of h.records) this.host.feed(existing, r.buf, r.address, r.port);
      return;
    }
    const first = h.records[0];
    const s = this.session(claim, first);
    this.host.adopt(s);
    if (s.suite) this.host.feed(s, first.buf, first.address, first.port);
    if (s.top < this.claimSeq(first.buf)) {
      // The record that caused the claim did not authenticate: undo it.
      this.takeovers.bad_mac++;
      this.host.drop(s);
      this.store.unclaim(cid, claim).catch((err: unknown) => this.logError(err, 'undoing a claim'));
      return;
    }
    this.takeovers.ok++;
    this.store.announce(cid, claim.lease.fence);
    this.dirty.add(s);
    for (let i = 1; i < h.records.length && s.keySlot >= 0; i++) {
      const r = h.records[i];
      this.host.feed(s, r.buf, r.address, r.port);
    }
  }

  /** The 48-bit sequence number of a record (at bytes 5–10). */
  private claimSeq(record: Buffer): number {
    return record.readUInt16BE(5) * 0x1_0000_0000 + record.readUInt32BE(7);
  }

  /** A session object for a claim: keys in a slot, a fresh write block, the window closed below the record. */
  private session(claim: SessionClaim, first: { buf: Buffer; address: string; port: number }): DtlsSession {
    const c = claim.session;
    const s = new DtlsSession(
      this.host,
      cidPeerKey(c.id),
      first.address,
      first.port,
      c.id,
      (Math.random() * 0x10000) | 0,
    );
    s.deviceId = c.deviceId;
    s.pskIdentity = c.pskIdentity === '' ? undefined : c.pskIdentity;
    s.credential = c.credentialKind;
    s.fingerprint = c.fingerprint === '' ? undefined : c.fingerprint;
    s.peerCid = c.peerCid;
    s.sendLimit = c.sendLimit;
    s.suite = CIPHER_SUITES.find((x) => x.id === c.suite);
    const keys = this.host.keys;
    s.keySlot = keys.alloc();
    c.keys.copy(keys.slab(s.keySlot), keys.offset(s.keySlot), 0, SLOT_BYTES);
    c.keys.fill(0);
    s.writeSeq = claim.lease.start;
    s.writeLimit = claim.lease.end;
    s.renewAt = claim.lease.start + this.half;
    // Everything below the record that caused the claim counts as seen (an earlier owner may have accepted it).
    s.top = this.claimSeq(first.buf) - 1;
    s.lo = -1;
    s.hi = -1;
    const share = new ShareState();
    share.fence = claim.lease.fence;
    share.credential = c.credential;
    // The claim stored the floor `s.top + 1`; the first checkpoint after it confirms the fence, so a replica
    // whose announcement was lost (pub/sub is at most once) learns within a second that it lost the session.
    share.storedTop = s.top;
    s.share = share;
    return s;
  }

  /** Claims in flight. */
  get claiming(): number {
    return this.held.size;
  }
}
