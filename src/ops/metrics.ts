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

/** A record of counts, one per key, all zero (a plain object without a prototype). */
export function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  const o = Object.create(null) as Record<K, number>;
  for (const k of keys) o[k] = 0;
  return o;
}

/** Reads every function of a record at once: a labelled gauge's value (label value → reader). */
export function readEach(fns: Readonly<Record<string, () => number>>): () => Record<string, number> {
  return () => Object.fromEntries(Object.entries(fns).map(([k, f]) => [k, f()]));
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
  return counterFromLabels(registry, name, help, labelName ? [labelName] : [], function* () {
    const v = read();
    if (typeof v === 'number') yield [[], v] as const;
    else if (labelName)
      for (const [k, n] of v instanceof Map ? v.entries() : Object.entries(v)) yield [[k], n] as const;
  });
}

/** A counter family with several labels, read from plain numbers (label values in `labelNames` order). */
export function counterFromLabels(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<readonly [readonly string[], number]>,
): Counter {
  return new Counter({
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      this.reset();
      for (const [values, n] of read()) {
        const labels: Record<string, string> = {};
        for (let i = 0; i < labelNames.length; i++) labels[labelNames[i]] = values[i];
        this.inc(labels, n);
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

type Sample = { labels: Record<string, string | number>; value: number; metricName: string };

/** The bucket counts of one histogram series: `observe` is a bucket scan and three additions. */
export class HistogramSeries {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(private readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length + 1);
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

  /** The series' exposition samples (`_bucket`, `_sum`, `_count`) with extra labels. */
  samples(name: string, labels: Record<string, string>, out: Sample[]): void {
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += this.counts[i];
      out.push({
        labels: { le: this.buckets[i], ...labels },
        value: cumulative,
        metricName: `${name}_bucket`,
      });
    }
    out.push({ labels: { le: '+Inf', ...labels }, value: this.count, metricName: `${name}_bucket` });
    out.push({ labels: { ...labels }, value: this.sum, metricName: `${name}_sum` });
    out.push({ labels: { ...labels }, value: this.count, metricName: `${name}_count` });
  }
}

/**
 * A histogram for hot paths: `observe` is a bucket scan and three additions, with no label handling; the
 * Prometheus exposition is built when scraped. Registered on the registry like any prom-client metric.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series: HistogramSeries;

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    this.series = new HistogramSeries(buckets);
    registry.registerMetric(this as never);
  }

  observe(value: number): void {
    this.series.observe(value);
  }

  reset(): void {
    this.series.reset();
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    this.series.samples(this.name, {}, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/**
 * A FastHistogram with one label: each label value gets its series once (`series(value)`), and hot paths
 * observe on that series directly.
 */
export class FastHistogramFamily {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly children = new Map<string, HistogramSeries>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly buckets: readonly number[],
  ) {
    registry.registerMetric(this as never);
  }

  series(labelValue: string): HistogramSeries {
    let s = this.children.get(labelValue);
    if (!s) {
      s = new HistogramSeries(this.buckets);
      this.children.set(labelValue, s);
    }
    return s;
  }

  reset(): void {
    for (const s of this.children.values()) s.reset();
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    for (const [label, s] of this.children) s.samples(this.name, { [this.labelName]: label }, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
