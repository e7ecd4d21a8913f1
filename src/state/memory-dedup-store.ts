/**
 * The `memory` dedup store: one process. A bounded map in expiry order (every record lives the same time, so
 * that is the order of arrival): expiry and eviction (caps in entries and bytes) pop the oldest. Times are the
 * callers', so expiry happens at their calls, not on a timer.
 */
import { BoundedMap } from '../collections/bounded-map.js';
import type { DedupStore } from './dedup-store.js';

/** Bytes charged per record on top of its strings (Map slot, record object, string headers). */
const RECORD_OVERHEAD_BYTES = 120;

export interface MemoryDedupLimits {
  maxEntries: number;
  maxBytes: number;
  /** Called with the number of records dropped before their time because a cap was reached. */
  onCap: (evicted: number) => void;
}

export class MemoryDedupStore implements DedupStore {
  readonly kind = 'memory';
  /** Device and key → the message id remembered. */
  private readonly records: BoundedMap<string, string>;
  readonly outcomes = new Map<string, number>();

  constructor(limits: MemoryDedupLimits) {
    this.records = new BoundedMap({
      maxEntries: limits.maxEntries,
      maxBytes: limits.maxBytes,
      timer: false,
      onCap: (_cap, evicted) => limits.onCap(evicted),
    });
  }

  get size(): number {
    return this.records.size;
  }

  get byteSize(): number {
    return this.records.byteSize;
  }

  private count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  remember(deviceId: string, key: string, messageId: string, ttlMs: number, now: number): Promise<void> {
    this.records.sweep(now);
    const k = deviceId + '\n' + key;
    this.records.set(k, messageId, RECORD_OVERHEAD_BYTES + k.length + messageId.length, now + ttlMs);
    this.count('remembered');
    return Promise.resolve();
  }

  recall(deviceId: string, key: string, now: number): Promise<string | undefined> {
    this.records.sweep(now);
    const messageId = this.records.get(deviceId + '\n' + key, now);
    this.count(messageId !== undefined ? 'recalled' : 'missed');
    return Promise.resolve(messageId);
  }

  /** Forgets expired records. */
  sweep(now: number): void {
    this.records.sweep(now);
  }

  close(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }
}
