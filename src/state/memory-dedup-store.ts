/**
 * The `memory` dedup store: one process. A Map in insertion order; every record lives the same time, so the
 * front is always the oldest, and expiry and eviction (caps in entries and bytes) pop from the front.
 */
import type { DedupStore } from './dedup-store.js';

/** Bytes charged per record on top of its strings (Map slot, record object, string headers). */
const RECORD_OVERHEAD_BYTES = 120;

class Remembered {
  constructor(
    readonly messageId: string,
    readonly bytes: number,
    readonly expiresAt: number,
  ) {}
}

export interface MemoryDedupLimits {
  maxEntries: number;
  maxBytes: number;
  /** Called with the number of records dropped before their time because a cap was reached. */
  onCap: (evicted: number) => void;
}

export class MemoryDedupStore implements DedupStore {
  readonly kind = 'memory';
  private readonly records = new Map<string, Remembered>();
  private bytes = 0;
  readonly outcomes = new Map<string, number>();

  constructor(private readonly limits: MemoryDedupLimits) {}

  get size(): number {
    return this.records.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  private count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  remember(deviceId: string, key: string, messageId: string, ttlMs: number, now: number): Promise<void> {
    this.sweep(now);
    const k = deviceId + '\n' + key;
    this.drop(k);
    const r = new Remembered(messageId, RECORD_OVERHEAD_BYTES + k.length + messageId.length, now + ttlMs);
    this.records.set(k, r);
    this.bytes += r.bytes;
    this.count('remembered');
    let evicted = 0;
    for (const [old] of this.records) {
      if (this.records.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      if (old === k) break;
      this.drop(old);
      evicted++;
    }
    if (evicted > 0) this.limits.onCap(evicted);
    return Promise.resolve();
  }

  recall(deviceId: string, key: string, now: number): Promise<string | undefined> {
    this.sweep(now);
    const r = this.records.get(deviceId + '\n' + key);
    this.count(r ? 'recalled' : 'missed');
    return Promise.resolve(r?.messageId);
  }

  private drop(k: string): void {
    const r = this.records.get(k);
    if (r === undefined) return;
    this.records.delete(k);
    this.bytes -= r.bytes;
  }

  /** Forgets expired records, oldest first: all live the same time, so the first live one ends the sweep. */
  sweep(now: number): void {
    for (const [k, r] of this.records) {
      if (r.expiresAt > now) break;
      this.drop(k);
    }
  }

  close(): Promise<void> {
    this.records.clear();
    this.bytes = 0;
    return Promise.resolve();
  }
}
