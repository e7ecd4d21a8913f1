/**
 * Message deduplication (RFC 7252 §4.5): remembers each request a peer sent, by Message ID, for
 * EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON), with the response that was sent, so a retransmission is
 * answered with the same bytes and never handled twice.
 *
 * A Map finds entries by peer and Message ID; a FIFO holds them in the order they were added, which is also the
 * order they expire in (up to the shorter NON lifetime): expiry and eviction (when a cap bites) pop from the
 * FIFO's head, O(1) per entry. Lookups check the expiry time too, so an entry with a shorter lifetime behind a
 * longer-lived one is never used after it expires.
 */
import { Fifo } from './fifo.js';

/** Bytes charged per entry on top of the cached response: key string, entry object, Map slot. */
export const ENTRY_OVERHEAD_BYTES = 160;

export class DedupEntry {
  /** The response sent for this request (piggybacked ACK, NON response), or the empty ACK. */
  response: Buffer | null = null;
  /** True once an empty ACK was sent: the response comes later, separately. */
  emptyAcked = false;

  /** False once removed from the map (the FIFO may still hold it). */
  live = true;

  constructor(
    readonly key: string,
    public expiresAt: number,
  ) {}
}

export interface DedupStats {
  entries: number;
  bytes: number;
  hits: number;
  evictions: number;
}

export class DedupCache {
  private readonly map = new Map<string, DedupEntry>();
  private readonly order = new Fifo<DedupEntry>();
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
    return this.map.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** The live entry for a key, or undefined. Counts a hit when found. */
  get(key: string, now: number): DedupEntry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.remove(key, e);
      return undefined;
    }
    this.hits++;
    return e;
  }

  /** Remembers a new request; evicts the oldest entries when a cap is reached. */
  add(key: string, expiresAt: number): DedupEntry {
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    const e = new DedupEntry(key, expiresAt);
    this.map.set(key, e);
    this.order.push(e);
    this.bytes += ENTRY_OVERHEAD_BYTES;
    if (this.map.size > this.maxEntries || this.bytes > this.maxBytes) this.evict();
    return e;
  }

  /** Records the response sent for an entry (its bytes count against the byte cap). */
  setResponse(key: string, e: DedupEntry, response: Buffer): void {
    if (e.response) this.bytes -= e.response.length;
    e.response = response;
    this.bytes += response.length;
    if (this.bytes > this.maxBytes) this.evict(key);
  }

  /** Forgets an entry (e.g. the request was rejected and may be sent again). */
  delete(key: string): void {
    const e = this.map.get(key);
    if (e) this.remove(key, e);
  }

  private remove(key: string, e: DedupEntry): void {
    this.map.delete(key);
    e.live = false;
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

  private evict(keep?: string): void {
    let n = 0;
    const kept: DedupEntry[] = [];
    while (this.map.size > this.maxEntries || this.bytes > this.maxBytes) {
      const e = this.oldest();
      if (e === undefined) break;
      this.order.shift();
      if (e.key === keep) {
        kept.push(e);
        continue;
      }
      this.remove(e.key, e);
      n++;
    }
    for (const e of kept) this.order.push(e);
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
      this.remove(e.key, e);
      n++;
    }
    return n;
  }

  clear(): void {
    for (const e of this.map.values()) e.live = false;
    this.map.clear();
    this.order.clear();
    this.bytes = 0;
  }
}
