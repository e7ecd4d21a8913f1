/**
 * Token buckets per key (per thing): at most `ratePerSecond` requests per second on average, bursts up to
 * the same number. Capped in keys; past the cap the oldest bucket is forgotten.
 */
import { Fifo } from '../collections/fifo.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class KeyedRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Keys in insertion order: the oldest bucket is forgotten first. */
  private readonly order = new Fifo<string>();
  private readonly burst: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly maxKeys: number,
    private readonly onCap: (n: number) => void,
  ) {
    this.burst = Math.max(1, ratePerSecond);
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token for `key`; false when its bucket is empty. */
  take(key: string, now = Date.now()): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) {
        this.buckets.delete(this.order.shift() as string);
        this.onCap(1);
      }
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
      this.order.push(key);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.ratePerSecond) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
