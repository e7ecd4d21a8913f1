/**
 * Counters and histograms whose numbers live in plain fields owned by a hot path and are read only when
 * Prometheus scrapes: the hot path does `stats.failures[i]++` or `histogram.observe(v)` with no label lookup.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string | number>;

interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** Registers a metric computed at scrape time (prom-client's registry reads `get()`). */
function register(
  registry: Registry,
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  values: () => Sample[],
): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Metric);
}

/** A counter family read from plain numbers: `read` yields label values (in `labelNames` order) and a count. */
export function counterFrom(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<readonly [readonly string[], number]>,
): void {
  register(registry, name, help, 'counter', () => {
    const out: Sample[] = [];
    for (const [labelValues, value] of read()) {
      const labels: Labels = {};
      for (let i = 0; i < labelNames.length; i++) labels[labelNames[i]] = labelValues[i];
      out.push({ labels, value });
    }
    return out;
  });
}

/** Default latency buckets in seconds: 10 µs to 1 s. */
export const LATENCY_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
] as const;

/** A histogram kept in plain numbers; `observe` is a bucket search and three additions. */
export class PlainHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = LATENCY_BUCKETS) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    if (i < b.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram family with one label, read from PlainHistograms at scrape time. */
export function histogramFrom(
  registry: Registry,
  name: string,
  help: string,
  labelName: string,
  read: () => Iterable<readonly [string, PlainHistogram]>,
): void {
  register(registry, name, help, 'histogram', () => {
    const out: Sample[] = [];
    for (const [label, h] of read()) {
      let cumulative = 0;
      for (let i = 0; i < h.bounds.length; i++) {
        cumulative += h.counts[i];
        out.push({
          labels: { le: h.bounds[i], [labelName]: label },
          value: cumulative,
          metricName: `${name}_bucket`,
        });
      }
      out.push({ labels: { le: '+Inf', [labelName]: label }, value: h.count, metricName: `${name}_bucket` });
      out.push({ labels: { [labelName]: label }, value: h.sum, metricName: `${name}_sum` });
      out.push({ labels: { [labelName]: label }, value: h.count, metricName: `${name}_count` });
    }
    return out;
  });
}
