/**
 * A Map with caps: at most `maxEntries` entries and `maxBytes` bytes (as the caller counts them), the oldest
 * entry going first when a cap bites, and optionally a time to live (for all entries, or given per entry)
 * after which an entry is gone: swept by a timer, or by the owner on its own clock (`timer: false`). The order
 * of arrival is kept in a deadline queue (a FIFO), so eviction and expiry pop from its head in O(1) instead of
 * iterating the Map from the front; entries deleted early stay behind as tombstones until the head reaches
 * them or they make up most of the queue.
 *
 * With times given per entry the order is that of expiry, so the entry that expires first is evicted first.
 *
 * The entry being stored or resized is never evicted by its own arrival: when it is at the head it moves to
 * the back of the line and the next oldest goes instead. `onCap` is told how many entries each cap evicted,
 * so the caller can count the hits and log them (the project's rule: a metric and a log line when a cap
 * bites). A map capped at 0 entries stores nothing.
 */
import { DeadlineQueue, type Expiring } from './deadline-queue.js';

/** Which cap evicted entries. */
export type MapCap = 'entries' | 'bytes';

export interface BoundedMapOptions<K = unknown, V = unknown> {
  maxEntries: number;
  /** Cap on the bytes the entries count (`set`, `resize`); unlimited unless given. */
  maxBytes?: number;
  /** Entries expire this long after they were stored; never unless given. */
  ttlMs?: number;
  /** The clock for expiry (ms); `Date.now` unless given. */
  now?: () => number;
  /** false: expired entries go only at lookups and `sweep(now)`, on times the owner passes in. */
  timer?: boolean;
  /** The expiry timer fires at multiples of this step (ms), sweeping what expired since. */
  resolutionMs?: number;
  /** Called after a store or resize that evicted entries, once per cap, with how many that cap evicted. */
  onCap?: (cap: MapCap, evicted: number) => void;
  /** Called for each entry that expired (swept by the timer or `sweep`; not one found expired by `get`). */
  onExpire?: (key: K, value: V) => void;
}

class MapEntry<K, V> implements Expiring {
  live = true;
  constructor(
    readonly key: K,
    readonly value: V,
    public bytes: number,
    readonly deadline: number,
  ) {}
}

const isDead = (entry: MapEntry<unknown, unknown>): boolean => !entry.live;

export class BoundedMap<K, V> {
  private readonly byKey = new Map<K, MapEntry<K, V>>();
  private readonly order: DeadlineQueue<MapEntry<K, V>>;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onCap: ((cap: MapCap, evicted: number) => void) | undefined;
  private bytes = 0;

  constructor(options: BoundedMapOptions<K, V>) {
    this.maxEntries = options.maxEntries;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? Date.now;
    this.onCap = options.onCap;
    this.order = new DeadlineQueue<MapEntry<K, V>>({
      expire: (entry) => {
        this.remove(entry);
        options.onExpire?.(entry.key, entry.value);
      },
      cancelled: isDead,
      now: this.now,
      timer: options.timer,
      resolutionMs: options.resolutionMs,
    });
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Bytes the entries count. */
  get byteSize(): number {
    return this.bytes;
  }

  /** The entry's value; undefined when there is none or it expired (by `now`). */
  get(key: K, now?: number): V | undefined {
    const entry = this.byKey.get(key);
    if (entry === undefined) return undefined;
    if (entry.deadline !== Number.POSITIVE_INFINITY && entry.deadline <= (now ?? this.now())) {
      this.cancel(entry);
      return undefined;
    }
    return entry.value;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /**
   * Stores `value` as the newest entry (replacing any under `key`), counted as `bytes`, until `expiresAt`
   * (default: the time to live from now, if there is one), then enforces the caps.
   */
  set(key: K, value: V, bytes = 0, expiresAt?: number): void {
    if (this.maxEntries === 0) return;
    const old = this.byKey.get(key);
    if (old !== undefined) this.cancel(old);
    const deadline =
      expiresAt ?? (this.ttlMs === Number.POSITIVE_INFINITY ? this.ttlMs : this.now() + this.ttlMs);
    const entry = new MapEntry(key, value, bytes, deadline);
    this.byKey.set(key, entry);
    this.bytes += bytes;
    this.order.add(entry);
    this.enforce(entry);
  }

  /** Counts the entry as `bytes` now (its value grew or shrank), then enforces the caps. */
  resize(key: K, bytes: number): void {
    const entry = this.byKey.get(key);
    if (entry === undefined || entry.bytes === bytes) return;
    this.bytes += bytes - entry.bytes;
    entry.bytes = bytes;
    this.enforce(entry);
  }

  delete(key: K): boolean {
    const entry = this.byKey.get(key);
    if (entry === undefined) return false;
    this.cancel(entry);
    return true;
  }

  /** Drops the entries expired by `now`. */
  sweep(now = this.now()): void {
    this.order.sweep(now);
  }

  clear(): void {
    this.byKey.clear();
    this.order.clear();
    this.bytes = 0;
  }

  /** The entries in order of arrival, expired ones not yet swept included. */
  *entries(): IterableIterator<[K, V]> {
    for (const entry of this.order) if (entry.live) yield [entry.key, entry.value];
  }

  /** Evicts the oldest entries (never `keep`) while a cap is passed. */
  private enforce(keep: MapEntry<K, V>): void {
    if (this.byKey.size <= this.maxEntries && this.bytes <= this.maxBytes) return;
    let byCount = 0;
    let byBytes = 0;
    let held = false;
    while (this.byKey.size > this.maxEntries || this.bytes > this.maxBytes) {
      const entry = this.order.shift();
      if (entry === undefined) break;
      if (entry === keep) {
        held = true;
        continue;
      }
      if (this.byKey.size > this.maxEntries) byCount++;
      else byBytes++;
      this.remove(entry);
    }
    // The entry in use goes to the back of the line (with a time to live: back to its place by deadline).
    if (held) this.order.add(keep);
    if (byCount) this.onCap?.('entries', byCount);
    if (byBytes) this.onCap?.('bytes', byBytes);
  }

  private remove(entry: MapEntry<K, V>): void {
    entry.live = false;
    this.byKey.delete(entry.key);
    this.bytes -= entry.bytes;
  }

  /** Removes an entry that is still in the order of arrival (it stays there as a tombstone). */
  private cancel(entry: MapEntry<K, V>): void {
    this.remove(entry);
    this.order.noteCancelled();
  }
}
