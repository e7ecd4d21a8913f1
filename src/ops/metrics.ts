/**
 * Prometheus metrics. Each gateway owns one registry; every layer registers its metrics on it. Metric names
 * are prefixed `cellgate_`. Hot paths count with plain numbers and report them at scrape time.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';

export type MetricsRegistry = Registry;

export function createMetricsRegistry(defaults = true): Registry {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'cellgate_' });
  return registry;
}

/** A gauge whose value is read from a function when Prometheus scrapes. */
export function gaugeFrom(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Record<string, number>,
  labelName?: string,
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames: labelName ? [labelName] : [],
    registers: [registry],
    collect() {
      const v = read();
      if (typeof v === 'number') this.set(v);
      else if (labelName) for (const [k, n] of Object.entries(v)) this.set({ [labelName]: k }, n);
    },
  });
}

/** A counter whose value is read from a plain number (or numbers per label) when Prometheus scrapes. */
export function counterFrom(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | ReadonlyMap<string, number> | Record<string, number>,
  labelName?: string,
): Counter {
  return new Counter({
    name,
    help,
    labelNames: labelName ? [labelName] : [],
    registers: [registry],
    collect() {
      const v = read();
      this.reset();
      if (typeof v === 'number') this.inc(v);
      else if (labelName) {
        const entries = v instanceof Map ? v.entries() : Object.entries(v);
        for (const [k, n] of entries) this.inc({ [labelName]: k }, n);
      }
    },
  });
}

/**
 * Reports caps that bite: `cellgate_cap_hits_total{cap}` counts every eviction or refusal a cap causes, and
 * a warning is logged at most once a minute per cap with the number of hits since the last line. `hit` only
 * adds to a number (it runs on hot paths when a cache is full); the counter is read when Prometheus scrapes
 * and the log lines come from a timer.
 */
export class CapReporter {
  private readonly totals = new Map<string, number>();
  private readonly logged = new Map<string, number>();
  private readonly lastLog = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    registry: Registry,
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
  ) {
    if (!registry.getSingleMetric('cellgate_cap_hits_total')) {
      counterFrom(
        registry,
        'cellgate_cap_hits_total',
        'Entries evicted or requests refused because a cap on a cache, table or queue was reached.',
        () => this.totals,
        'cap',
      );
    }
    this.timer = setInterval(() => this.report(), Math.min(intervalMs, 5000));
    this.timer.unref();
  }

  hit(cap: string, count = 1): void {
    this.totals.set(cap, (this.totals.get(cap) ?? 0) + count);
    if (!this.lastLog.has(cap)) this.report();
  }

  /** Hits of a cap so far. */
  total(cap: string): number {
    return this.totals.get(cap) ?? 0;
  }

  /** Logs caps that were hit since their last line, at most once per interval each. */
  report(): void {
    const now = Date.now();
    for (const [cap, total] of this.totals) {
      const since = total - (this.logged.get(cap) ?? 0);
      if (since === 0 || now - (this.lastLog.get(cap) ?? -Infinity) < this.intervalMs) continue;
      this.log.warn({ cap, hits: since }, `cap reached: ${cap}`);
      this.logged.set(cap, total);
      this.lastLog.set(cap, now);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * A histogram for hot paths: `observe` is a bucket scan and three additions, with no label handling; the
 * Prometheus exposition is built when scraped. Registered on the registry like any prom-client metric.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = new Float64Array(buckets.length + 1);
    registry.registerMetric(this as never);
  }

  observe(value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Record<string, string | number>; value: number; metricName: string }[];
  } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += this.counts[i];
      values.push({ labels: { le: this.buckets[i] }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
