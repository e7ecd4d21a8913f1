/**
 * Message deduplication (RFC 7252 §4.5): remembers each request a peer sent, by Message ID, for
 * EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON), with the response that was sent, so a retransmission is
 * answered with the same bytes and never handled twice.
 *
 * Entries live in a small Map per peer, keyed by Message ID (a small integer), found through the peer's key
 * (a string whose hash V8 keeps). A FIFO holds all entries in the order they were added, which is the order
 * they expire in (up to the shorter NON lifetime): expiry and eviction when a cap bites pop from its head,
 * O(1) per entry. Lookups check the expiry time too, so an entry with a shorter lifetime behind a
 * longer-lived one is never used after it expires.
 */
import { Fifo } from './fifo.js';

/**
 * Bytes charged per entry on top of the cached response bytes: the entry object, its Map and FIFO slots and
 * the Buffer object holding the response, as measured on Node 20 (`npm run bench -- engine` prints the
 * measured figure next to this one).
 */
export const ENTRY_OVERHEAD_BYTES = 256;

type PeerTable = Map<number, DedupEntry>;

export class DedupEntry {
  /** The response sent for this request (piggybacked ACK, NON response), or the empty ACK. */
  response: Buffer | null = null;
  /** True once an empty ACK was sent: the response comes later, separately. */
  emptyAcked = false;
  /** False once removed from its table (the FIFO may still hold it). */
  live = true;

  constructor(
    readonly peerKey: string,
    readonly table: PeerTable,
    readonly messageId: number,
    public expiresAt: number,
  ) {}
}

export class DedupCache {
  private readonly tables = new Map<string, PeerTable>();
  private readonly order = new Fifo<DedupEntry>();
  private entries = 0;
  private bytes = 0;
  hits = 0;
  evictions = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    /** Called with the number of entries evicted early because a cap was reached. */
    private readonly onCap: (evicted: number) => void,
  ) {}

  get size(): number {
    return this.entries;
  }

  get byteSize(): number {
    return this.bytes;
  }

  get peerCount(): number {
    return this.tables.size;
  }

  /** The live entry for a peer's Message ID, or undefined. Counts a hit when found. */
  get(peerKey: string, messageId: number, now: number): DedupEntry | undefined {
    const table = this.tables.get(peerKey);
    if (table === undefined) return undefined;
    const e = table.get(messageId);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.remove(e);
      return undefined;
    }
    this.hits++;
    return e;
  }

  /** Remembers a new request; evicts the oldest entries when a cap is reached. */
  add(peerKey: string, messageId: number, expiresAt: number): DedupEntry {
    let table = this.tables.get(peerKey);
    if (table === undefined) {
      table = new Map();
      this.tables.set(peerKey, table);
    } else {
      const old = table.get(messageId);
      if (old) this.remove(old);
    }
    const e = new DedupEntry(peerKey, table, messageId, expiresAt);
    table.set(messageId, e);
    this.order.push(e);
    this.entries++;
    this.bytes += ENTRY_OVERHEAD_BYTES;
    if (this.entries > this.maxEntries || this.bytes > this.maxBytes) this.evict();
    return e;
  }

  /** Records the response sent for an entry (its bytes count against the byte cap). */
  setResponse(e: DedupEntry, response: Buffer): void {
    if (!e.live) return;
    if (e.response) this.bytes -= e.response.length;
    e.response = response;
    this.bytes += response.length;
    if (this.bytes > this.maxBytes) this.evict(e);
  }

  private remove(e: DedupEntry): void {
    if (!e.live) return;
    e.live = false;
    const table = e.table;
    table.delete(e.messageId);
    if (table.size === 0 && this.tables.get(e.peerKey) === table) this.tables.delete(e.peerKey);
    this.entries--;
    this.bytes -= ENTRY_OVERHEAD_BYTES + (e.response ? e.response.length : 0);
  }

  /** Pops removed entries off the FIFO's head; returns the oldest live entry. */
  private oldest(): DedupEntry | undefined {
    let e = this.order.peek();
    while (e !== undefined && !e.live) {
      this.order.shift();
      e = this.order.peek();
    }
    return e;
  }

  private evict(keep?: DedupEntry): void {
    let n = 0;
    let kept: DedupEntry | undefined;
    while (this.entries > this.maxEntries || this.bytes > this.maxBytes) {
      const e = this.oldest();
      if (e === undefined) break;
      this.order.shift();
      if (e === keep) {
        kept = e;
        if (this.entries === 1) break;
        continue;
      }
      this.remove(e);
      n++;
    }
    if (kept) this.order.push(kept);
    if (n > 0) {
      this.evictions += n;
      this.onCap(n);
    }
  }

  /** Drops expired entries from the head. Call periodically. */
  sweep(now: number): number {
    let n = 0;
    for (let e = this.oldest(); e !== undefined && e.expiresAt <= now; e = this.oldest()) {
      this.order.shift();
      this.remove(e);
      n++;
    }
    return n;
  }

  clear(): void {
    for (let e = this.order.shift(); e !== undefined; e = this.order.shift()) e.live = false;
    this.tables.clear();
    this.entries = 0;
    this.bytes = 0;
  }
}
