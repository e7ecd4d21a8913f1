/**
 * Message deduplication (RFC 7252 §4.5): remembers each request a peer sent, by Message ID, for
 * EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON), with the response that was sent, so a retransmission is
 * answered with the same bytes and never handled twice.
 *
 * Built to keep the garbage collector's work small at tens of thousands of requests a second, since every
 * remembered exchange outlives many young-generation collections:
 * - a small Map per peer, found through the peer's key (a string whose hash V8 keeps), maps a Message ID to
 *   its state: in progress, answered with an empty ACK, or the response itself as a one-byte string (a string
 *   is far cheaper to keep than a Buffer view). That string is the only object an exchange leaves behind.
 * - the order entries expire in is kept in two rings of parallel arrays (no object per entry), one per
 *   lifetime, so each ring is in expiry order: expiry and eviction when a cap bites pop from a ring's head,
 *   O(1) per entry. Expired entries are also popped before a lookup, so expiry is exact.
 */

/** Bytes charged per entry on top of the response bytes (Map slot, ring slots, string header), as measured. */
export const ENTRY_OVERHEAD_BYTES = 96;

/** The request is being handled; a retransmission is ignored (the response will come). */
export const IN_PROGRESS = 0;
/** The request was acknowledged with an empty ACK; a retransmission gets the empty ACK again. */
export const EMPTY_ACKED = 1;

/** What is remembered for a request: a state, or the response sent, as a one-byte string. */
export type DedupState = typeof IN_PROGRESS | typeof EMPTY_ACKED | string;

type PeerTable = Map<number, DedupState>;

/** Entries of one lifetime, oldest first, as parallel ring arrays. */
class Ring {
  private tables: (PeerTable | undefined)[];
  private keys: (string | undefined)[];
  private mids: Uint16Array;
  private added: Float64Array;
  private head = 0;
  count = 0;

  constructor(
    readonly lifetimeMs: number,
    capacity = 1024,
  ) {
    this.tables = new Array<PeerTable | undefined>(capacity);
    this.keys = new Array<string | undefined>(capacity);
    this.mids = new Uint16Array(capacity);
    this.added = new Float64Array(capacity);
  }

  push(table: PeerTable, key: string, mid: number, now: number): void {
    if (this.count === this.mids.length) this.grow();
    const i = (this.head + this.count) % this.mids.length;
    this.tables[i] = table;
    this.keys[i] = key;
    this.mids[i] = mid;
    this.added[i] = now;
    this.count++;
  }

  /** Time the oldest entry was added, or Infinity. */
  oldest(): number {
    return this.count === 0 ? Infinity : this.added[this.head];
  }

  /** Removes the oldest entry from the ring and returns its table, key and Message ID through `out`. */
  shift(out: Popped): void {
    const i = this.head;
    out.table = this.tables[i] as PeerTable;
    out.key = this.keys[i] as string;
    out.mid = this.mids[i];
    this.tables[i] = undefined;
    this.keys[i] = undefined;
    this.head = (i + 1) % this.mids.length;
    this.count--;
  }

  clear(): void {
    this.tables.fill(undefined);
    this.keys.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const n = this.mids.length;
    const tables = new Array<PeerTable | undefined>(n * 2);
    const keys = new Array<string | undefined>(n * 2);
    const mids = new Uint16Array(n * 2);
    const added = new Float64Array(n * 2);
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % n;
      tables[k] = this.tables[i];
      keys[k] = this.keys[i];
      mids[k] = this.mids[i];
      added[k] = this.added[i];
    }
    this.tables = tables;
    this.keys = keys;
    this.mids = mids;
    this.added = added;
    this.head = 0;
  }
}

interface Popped {
  table: PeerTable | undefined;
  key: string;
  mid: number;
}

export class DedupCache {
  private readonly tables = new Map<string, PeerTable>();
  private readonly con: Ring;
  private readonly non: Ring;
  private readonly popped: Popped = { table: undefined, key: '', mid: 0 };
  private entries = 0;
  private bytes = 0;
  /** Earliest time an entry can expire: lookups before it need not sweep. */
  private nextExpiry = Infinity;
  hits = 0;
  evictions = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    conLifetimeMs: number,
    nonLifetimeMs: number,
    /** Called with the number of entries evicted early because a cap was reached. */
    private readonly onCap: (evicted: number) => void,
  ) {
    this.con = new Ring(conLifetimeMs);
    this.non = new Ring(nonLifetimeMs);
  }

  get size(): number {
    return this.entries;
  }

  get byteSize(): number {
    return this.bytes;
  }

  get peerCount(): number {
    return this.tables.size;
  }

  /** What is remembered for a peer's Message ID, or undefined. Counts a hit when found. */
  get(peerKey: string, messageId: number, now: number): DedupState | undefined {
    if (now >= this.nextExpiry) this.sweep(now);
    const table = this.tables.get(peerKey);
    if (table === undefined) return undefined;
    const state = table.get(messageId);
    if (state !== undefined) this.hits++;
    return state;
  }

  /** Remembers a new request (CON or NON) as in progress; evicts the oldest entries when a cap is reached. */
  add(peerKey: string, messageId: number, confirmable: boolean, now: number): void {
    let table = this.tables.get(peerKey);
    if (table === undefined) {
      table = new Map();
      this.tables.set(peerKey, table);
    } else if (table.has(messageId)) {
      return;
    }
    table.set(messageId, IN_PROGRESS);
    const ring = confirmable ? this.con : this.non;
    ring.push(table, peerKey, messageId, now);
    const expires = now + ring.lifetimeMs;
    if (expires < this.nextExpiry) this.nextExpiry = expires;
    this.entries++;
    this.bytes += ENTRY_OVERHEAD_BYTES;
    if (this.entries > this.maxEntries || this.bytes > this.maxBytes) this.evict();
  }

  /** Records the response sent for a request still remembered (its bytes count against the byte cap). */
  setResponse(peerKey: string, messageId: number, response: Buffer): void {
    const table = this.tables.get(peerKey);
    const old = table?.get(messageId);
    if (table === undefined || old === undefined) return;
    if (typeof old === 'string') this.bytes -= old.length;
    table.set(messageId, response.toString('latin1'));
    this.bytes += response.length;
    if (this.bytes > this.maxBytes) this.evict();
  }

  /** Records that a request was acknowledged with an empty ACK. */
  setEmptyAcked(peerKey: string, messageId: number): void {
    const table = this.tables.get(peerKey);
    if (table?.get(messageId) === IN_PROGRESS) table.set(messageId, EMPTY_ACKED);
  }

  /** Pops the oldest entry of a ring and forgets it. */
  private drop(ring: Ring): void {
    const p = this.popped;
    ring.shift(p);
    const table = p.table as PeerTable;
    const state = table.get(p.mid);
    if (state === undefined) return;
    table.delete(p.mid);
    if (table.size === 0 && this.tables.get(p.key) === table) this.tables.delete(p.key);
    this.entries--;
    this.bytes -= ENTRY_OVERHEAD_BYTES + (typeof state === 'string' ? state.length : 0);
    p.table = undefined;
  }

  private evict(): void {
    let n = 0;
    // Keep at least the newest entry, whatever its size.
    while ((this.entries > this.maxEntries || this.bytes > this.maxBytes) && this.entries > 1) {
      this.drop(this.con.oldest() <= this.non.oldest() ? this.con : this.non);
      n++;
    }
    this.updateNextExpiry();
    if (n > 0) {
      this.evictions += n;
      this.onCap(n);
    }
  }

  /** Forgets expired entries. Runs before lookups that could see one, and periodically. */
  sweep(now: number): number {
    let n = 0;
    for (const ring of [this.con, this.non]) {
      while (ring.count > 0 && ring.oldest() + ring.lifetimeMs <= now) {
        this.drop(ring);
        n++;
      }
    }
    this.updateNextExpiry();
    return n;
  }

  private updateNextExpiry(): void {
    this.nextExpiry = Math.min(
      this.con.oldest() + this.con.lifetimeMs,
      this.non.oldest() + this.non.lifetimeMs,
    );
  }

  clear(): void {
    this.tables.clear();
    this.con.clear();
    this.non.clear();
    this.entries = 0;
    this.bytes = 0;
    this.nextExpiry = Infinity;
  }
}
