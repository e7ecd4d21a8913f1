/**
 * Token buckets per key (per thing): at most `ratePerSecond` requests per second on average, bursts up to
 * the same number. Capped in keys; past the cap the oldest bucket is forgotten.
 */
import { BoundedMap } from '../collections/bounded-map.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class KeyedRateLimiter {
  /** The oldest bucket is forgotten first. */
  private readonly buckets: BoundedMap<string, Bucket>;
  private readonly burst: number;

  constructor(
    private readonly ratePerSecond: number,
    maxKeys: number,
    onCap: (n: number) => void,
  ) {
    this.burst = Math.max(1, ratePerSecond);
    this.buckets = new BoundedMap({ maxEntries: maxKeys, onCap: (_cap, n) => onCap(n) });
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token for `key`; false when its bucket is empty. */
  take(key: string, now = Date.now()): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.ratePerSecond) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
