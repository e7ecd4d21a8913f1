/**
 * The in-process session store: the rules of the Redis store (leased write blocks, fencing, the replay
 * floor, idle expiry, device index, revocations) over plain maps, for replicas that share one process (the
 * tests of those rules, in-process benchmarks). A single gateway with `state.store: memory` needs no shared
 * store at all: its session table is the truth.
 */
import {
  DEFAULT_BLOCK_SIZE,
  type ClaimRefusal,
  type Revocation,
  type SeqLease,
  type SessionClaim,
  type SessionStore,
  type SessionStoreOptions,
  type SharedSession,
} from './session-store.js';

interface Entry {
  session: SharedSession;
  token: number;
  fence: number;
  /** First write sequence number not yet leased. */
  next: number;
  floor: number;
  expires: number;
}

/** Expired entries are looked for after this many writes. */
const PURGE_EVERY = 1024;

function copy(s: SharedSession): SharedSession {
  return { ...s, keys: Buffer.from(s.keys) };
}

export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory';
  readonly blockSize: number;
  private readonly sessions = new Map<string, Entry>();
  /** Device → its current session id and the credential tag it was made with. */
  private readonly devices = new Map<string, { id: string; credential: number }>();
  private readonly listeners: ((id: string, fence: number, why: Revocation) => void)[] = [];
  private readonly idleMs: number;
  private writes = 0;

  constructor(opts: SessionStoreOptions) {
    this.idleMs = opts.idleTimeoutMs;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  }

  /** Sessions held (expired ones may linger until the next purge). */
  get size(): number {
    return this.sessions.size;
  }

  private live(id: string): Entry | undefined {
    const e = this.sessions.get(id);
    if (e && e.expires <= Date.now()) {
      this.drop(id, e.session.deviceId);
      return undefined;
    }
    return e;
  }

  private touch(e: Entry): void {
    e.expires = Date.now() + this.idleMs;
    if (++this.writes % PURGE_EVERY === 0) {
      const now = Date.now();
      for (const [id, x] of this.sessions) if (x.expires <= now) this.drop(id, x.session.deviceId);
    }
  }

  private drop(id: string, deviceId: string): void {
    this.sessions.delete(id);
    if (this.devices.get(deviceId)?.id === id) this.devices.delete(deviceId);
  }

  private emit(id: string, fence: number, why: Revocation): void {
    // Like a pub/sub message: heard a moment later, by every replica.
    setImmediate(() => {
      for (const l of this.listeners) l(id, fence, why);
    });
  }

  create(
    s: SharedSession,
    writtenUpTo: number,
    acceptedTop: number,
    token: number,
  ): Promise<SeqLease | 'moved' | 'taken'> {
    const end = writtenUpTo + this.blockSize;
    let e = this.live(s.id);
    if (e) {
      if (e.token !== token) return Promise.resolve('taken');
      if (e.fence !== 1) return Promise.resolve('moved');
      e.next = Math.max(e.next, end);
      e.floor = Math.max(e.floor, acceptedTop);
    } else {
      e = { session: copy(s), token, fence: 1, next: end, floor: acceptedTop, expires: 0 };
      this.sessions.set(s.id, e);
    }
    this.touch(e);
    const before = this.devices.get(s.deviceId)?.id;
    this.devices.set(s.deviceId, { id: s.id, credential: s.credential });
    if (before !== undefined && before !== s.id) {
      this.sessions.delete(before);
      this.emit(before, 0, 'ended');
    }
    return Promise.resolve({ fence: 1, start: 0, end: e.next });
  }

  claim(id: string, seq: number): Promise<SessionClaim | ClaimRefusal> {
    const e = this.live(id);
    if (!e) return Promise.resolve('unknown');
    if (seq <= e.floor) return Promise.resolve('replay');
    const undo = { fence: e.fence, floor: e.floor };
    e.fence++;
    e.floor = seq;
    const start = e.next;
    e.next += this.blockSize;
    this.touch(e);
    return Promise.resolve({
      session: copy(e.session),
      lease: { fence: e.fence, start, end: e.next },
      undo,
    });
  }

  unclaim(id: string, claim: SessionClaim): Promise<void> {
    const e = this.live(id);
    if (e && e.fence === claim.lease.fence) {
      e.fence = claim.undo.fence;
      e.floor = claim.undo.floor;
    }
    return Promise.resolve();
  }

  announce(id: string, fence: number): void {
    this.emit(id, fence, 'moved');
  }

  lease(id: string, fence: number): Promise<SeqLease | undefined> {
    const e = this.live(id);
    if (!e || e.fence !== fence) return Promise.resolve(undefined);
    const start = e.next;
    e.next += this.blockSize;
    this.touch(e);
    return Promise.resolve({ fence, start, end: e.next });
  }

  checkpoint(id: string, _deviceId: string, fence: number, acceptedTop: number): Promise<boolean> {
    const e = this.live(id);
    if (!e || e.fence !== fence) return Promise.resolve(false);
    if (acceptedTop > e.floor) e.floor = acceptedTop;
    this.touch(e);
    return Promise.resolve(true);
  }

  remove(id: string, deviceId: string): Promise<void> {
    if (this.sessions.has(id)) {
      this.drop(id, deviceId);
      this.emit(id, 0, 'ended');
    }
    return Promise.resolve();
  }

  removeDevice(deviceId: string, keep?: number): Promise<void> {
    const d = this.devices.get(deviceId);
    return d === undefined || d.credential === keep ? Promise.resolve() : this.remove(d.id, deviceId);
  }

  onRevoked(listener: (id: string, fence: number, why: Revocation) => void): void {
    this.listeners.push(listener);
  }

  close(): Promise<void> {
    this.sessions.clear();
    this.devices.clear();
    return Promise.resolve();
  }
}
