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

export interface BoundedMapOptions {
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
}

class Slot<K, V> implements Expiring {
  live = true;
  constructor(
    readonly key: K,
    readonly value: V,
    public bytes: number,
    readonly deadline: number,
  ) {}
}

const isDead = (slot: Slot<unknown, unknown>): boolean => !slot.live;

export class BoundedMap<K, V> {
  private readonly slots = new Map<K, Slot<K, V>>();
  private readonly order: DeadlineQueue<Slot<K, V>>;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onCap: ((cap: MapCap, evicted: number) => void) | undefined;
  private bytes = 0;

  constructor(options: BoundedMapOptions) {
    this.maxEntries = options.maxEntries;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? Date.now;
    this.onCap = options.onCap;
    this.order = new DeadlineQueue<Slot<K, V>>({
      expire: (slot) => this.remove(slot),
      cancelled: isDead,
      now: this.now,
      timer: options.timer,
      resolutionMs: options.resolutionMs,
    });
  }

  get size(): number {
    return this.slots.size;
  }

  /** Bytes the entries count. */
  get byteSize(): number {
    return this.bytes;
  }

  /** The entry's value; undefined when there is none or it expired (by `now`). */
  get(key: K, now?: number): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (slot.deadline !== Number.POSITIVE_INFINITY && slot.deadline <= (now ?? this.now())) {
      this.cancel(slot);
      return undefined;
    }
    return slot.value;
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
    const old = this.slots.get(key);
    if (old !== undefined) this.cancel(old);
    const deadline =
      expiresAt ?? (this.ttlMs === Number.POSITIVE_INFINITY ? this.ttlMs : this.now() + this.ttlMs);
    const slot = new Slot(key, value, bytes, deadline);
    this.slots.set(key, slot);
    this.bytes += bytes;
    this.order.add(slot);
    this.enforce(slot);
  }

  /** Counts the entry as `bytes` now (its value grew or shrank), then enforces the caps. */
  resize(key: K, bytes: number): void {
    const slot = this.slots.get(key);
    if (slot === undefined || slot.bytes === bytes) return;
    this.bytes += bytes - slot.bytes;
    slot.bytes = bytes;
    this.enforce(slot);
  }

  delete(key: K): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.cancel(slot);
    return true;
  }

  /** Drops the entries expired by `now`. */
  sweep(now = this.now()): void {
    this.order.sweep(now);
  }

  clear(): void {
    this.slots.clear();
    this.order.clear();
    this.bytes = 0;
  }

  /** The entries in order of arrival, expired ones not yet swept included. */
  *entries(): IterableIterator<[K, V]> {
    for (const slot of this.order) if (slot.live) yield [slot.key, slot.value];
  }

  /** Evicts the oldest entries (never `keep`) while a cap is passed. */
  private enforce(keep: Slot<K, V>): void {
    if (this.slots.size <= this.maxEntries && this.bytes <= this.maxBytes) return;
    let byCount = 0;
    let byBytes = 0;
    let held = false;
    while (this.slots.size > this.maxEntries || this.bytes > this.maxBytes) {
      const slot = this.order.shift();
      if (slot === undefined) break;
      if (slot === keep) {
        held = true;
        continue;
      }
      if (this.slots.size > this.maxEntries) byCount++;
      else byBytes++;
      this.remove(slot);
    }
    // The entry in use goes to the back of the line (with a time to live: back to its place by deadline).
    if (held) this.order.add(keep);
    if (byCount) this.onCap?.('entries', byCount);
    if (byBytes) this.onCap?.('bytes', byBytes);
  }

  private remove(slot: Slot<K, V>): void {
    slot.live = false;
    this.slots.delete(slot.key);
    this.bytes -= slot.bytes;
  }

  /** Removes an entry that is still in the order of arrival (it stays there as a tombstone). */
  private cancel(slot: Slot<K, V>): void {
    this.remove(slot);
    this.order.noteCancelled();
  }
}
