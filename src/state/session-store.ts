/**
 * Where DTLS sessions are shared by replicas: a small store interface with an in-process implementation
 * (replicas in one process: tests) and a Redis one (a fleet). The DTLS layer uses only this interface.
 *
 * The rules it carries (see docs/dtls.md, "Session sharing"):
 * - *Write sequence blocks*: a replica writes records only with sequence numbers from a block it leased
 *   from the store; the store hands every block out once (a counter that only grows), so two replicas
 *   never write two records with the same key, epoch and sequence number.
 * - *Fencing*: every take-over raises the session's fence; a lease or checkpoint under an older fence fails,
 *   and the replica that held it drops its copy (it is also told at once through `onRevoked`).
 * - *Replay floor*: the store keeps the highest client sequence number any owner accepted (a take-over sets
 *   it to the record that caused it; owners raise it at checkpoints). A take-over by a record at or below
 *   it is refused, and the new owner refuses everything below its first record.
 */

/** What the store keeps of an established session (the Redis store seals it). */
export interface SharedSession {
  /** The server's Connection ID (latin1): the session's id in the store. */
  id: string;
  deviceId: string;
  /** '' unless the device authenticated with a PSK. */
  pskIdentity: string;
  /** The kind of credential the device authenticated with. */
  credentialKind: 'psk' | 'rpk' | 'x509';
  /** SHA-256 of its certificate or raw public key (lower-case hex); '' for a PSK. No certificate is kept. */
  fingerprint: string;
  /** Cipher suite code point. */
  suite: number;
  /** The client's Connection ID (latin1), put in records the server writes. */
  peerCid: string;
  /** Largest plaintext the client accepts in one record. */
  sendLimit: number;
  /** The key slot: AEAD key block and the server's verify_data. */
  keys: Buffer;
  /**
   * A tag of the credential the session was made with (first 4 bytes of SHA-256 of the PSK), kept with the
   * device's entry: ending a device's sessions for a credential change spares a session made with the new one.
   */
  credential: number;
}

/** Write sequence numbers [start, end) leased to one owner (`fence`). */
export interface SeqLease {
  fence: number;
  start: number;
  end: number;
}

/** A take-over: the session, a fresh write block, and the floor under which client records are refused. */
export interface SessionClaim {
  session: SharedSession;
  lease: SeqLease;
  /** What the store held before the claim, to undo it when the record turns out not to authenticate. */
  undo: { fence: number; floor: number };
}

/** Why `onRevoked` fired: another replica took the session over, or it ended everywhere. */
export type Revocation = 'moved' | 'ended';

/** Result of a claim that did not take the session over. */
export type ClaimRefusal = 'unknown' | 'replay';

export interface SessionStore {
  readonly kind: 'memory' | 'redis';
  /** Sequence numbers in one leased write block. */
  readonly blockSize: number;
  /**
   * Stores a session whose handshake just completed (or whose first store failed), with the records
   * written so far below `writtenUpTo`: returns this owner's lease (fence 1); 'moved' when another replica
   * already took the session over (the caller drops it); 'taken' when another replica's session has the
   * same Connection ID (this one stays in this process only). `token` is drawn by the creator: a retry
   * with the same token is the same creation. A session of the same device stored before is removed (it
   * was replaced).
   */
  create(
    s: SharedSession,
    writtenUpTo: number,
    acceptedTop: number,
    token: number,
  ): Promise<SeqLease | 'moved' | 'taken'>;
  /** Takes the session over because of a client record with sequence number `seq` (one round trip). */
  claim(id: string, seq: number): Promise<SessionClaim | ClaimRefusal>;
  /** Undoes a claim whose record did not authenticate (when nothing else happened to the session since). */
  unclaim(id: string, claim: SessionClaim): Promise<void>;
  /** Tells every replica that `id` now belongs to the owner of `fence` (after its record authenticated). */
  announce(id: string, fence: number): void;
  /** A further write block for the owner of `fence`; undefined when the session moved or ended. */
  lease(id: string, fence: number): Promise<SeqLease | undefined>;
  /**
   * Raises the replay floor to `acceptedTop` and keeps the session (and its device index) alive for
   * another idle period; false when the session moved or ended.
   */
  checkpoint(id: string, deviceId: string, fence: number, acceptedTop: number): Promise<boolean>;
  /** Ends the session on every replica (close_notify, replaced). */
  remove(id: string, deviceId: string): Promise<void>;
  /**
   * Ends the session of a device on every replica (removed, or its key changed) — unless it was made with
   * the credential tagged `keep` (the device's current one: a replica that reloads its device file late
   * must not end the session the device already made with its new key).
   */
  removeDevice(deviceId: string, keep?: number): Promise<void>;
  /** `listener(id, fence, why)` when a session moved to the owner of `fence`, or ended (`fence` 0). */
  onRevoked(listener: (id: string, fence: number, why: Revocation) => void): void;
  close(): Promise<void>;
}

/** Idle time after which the store forgets a session (`dtls.idleTimeoutMs`). */
export interface SessionStoreOptions {
  idleTimeoutMs: number;
  /** Write sequence numbers per lease (default 65,536). */
  blockSize?: number;
}

export const DEFAULT_BLOCK_SIZE = 65_536;
