/** A latency histogram with 10 µs buckets up to 1 s (plus overflow), cheap enough for a load generator. */
export class LatencyHistogram {
  static readonly BUCKET_US = 10;
  readonly counts = new Float64Array(100_001);
  total = 0;
  max = 0;

  record(ms: number): void {
    const us = ms * 1000;
    const i = Math.min(this.counts.length - 1, Math.floor(us / LatencyHistogram.BUCKET_US));
    this.counts[i]++;
    this.total++;
    if (ms > this.max) this.max = ms;
  }

  merge(other: { counts: ArrayLike<number>; total: number; max: number }): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
    this.max = Math.max(this.max, other.max);
  }

  /** The q-quantile in milliseconds (upper edge of its bucket). */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const target = q * this.total;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= target) return ((i + 1) * LatencyHistogram.BUCKET_US) / 1000;
    }
    return this.max;
  }
}
