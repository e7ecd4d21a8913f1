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

/**
 * A counter whose value is read from a function when Prometheus scrapes: the hot path increments plain
 * numbers (monotonic) and the registry sees them as a counter, per label value when `labelName` is given.
 */
export function counterFrom(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Readonly<Record<string, number>>,
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
      else if (labelName) for (const [k, n] of Object.entries(v)) this.inc({ [labelName]: k }, n);
    },
  });
}

/**
 * Reports caps that bite: `cellgate_cap_hits_total{cap}` counts every eviction or refusal a cap causes, and
 * a warning is logged at most once a minute per cap with the number of hits since the last line.
 */
export class CapReporter {
  private readonly counter: Counter<'cap'>;
  private readonly pending = new Map<string, { hits: number; lastLog: number }>();

  constructor(
    registry: Registry,
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
  ) {
    const existing = registry.getSingleMetric('cellgate_cap_hits_total') as Counter<'cap'> | undefined;
    this.counter =
      existing ??
      new Counter({
        name: 'cellgate_cap_hits_total',
        help: 'Entries evicted or requests refused because a cap on a cache, table or queue was reached.',
        labelNames: ['cap'],
        registers: [registry],
      });
  }

  hit(cap: string, count = 1): void {
    this.counter.inc({ cap }, count);
    const now = Date.now();
    let p = this.pending.get(cap);
    if (!p) {
      p = { hits: 0, lastLog: 0 };
      this.pending.set(cap, p);
    }
    p.hits += count;
    if (now - p.lastLog >= this.intervalMs) {
      this.log.warn({ cap, hits: p.hits }, `cap reached: ${cap}`);
      p.hits = 0;
      p.lastLog = now;
    }
  }
}
