import { describe, expect, it } from 'vitest';
import { counterFrom, histogramFrom, PlainHistogram } from '../../src/ops/collected.js';
import { createMetricsRegistry } from '../../src/ops/metrics.js';

describe('metrics read from plain numbers at scrape time', () => {
  it('exposes a counter family and a histogram family in the Prometheus text format', async () => {
    const registry = createMetricsRegistry(false);
    const counts = new Map([
      ['a', 3],
      ['b', 0],
    ]);
    counterFrom(registry, 'cellgate_test_things_total', 'Things.', ['kind'], () =>
      [...counts].map(([k, v]) => [[k], v] as const),
    );
    const h = new PlainHistogram([0.001, 0.01]);
    for (const v of [0.0005, 0.001, 0.005, 0.5]) h.observe(v);
    histogramFrom(registry, 'cellgate_test_seconds', 'Seconds.', 'codec', () => [['x', h]]);
    counts.set('a', 4);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE cellgate_test_things_total counter');
    expect(text).toContain('cellgate_test_things_total{kind="a"} 4');
    expect(text).toContain('cellgate_test_things_total{kind="b"} 0');
    expect(text).toContain('# TYPE cellgate_test_seconds histogram');
    expect(text).toContain('cellgate_test_seconds_bucket{le="0.001",codec="x"} 2');
    expect(text).toContain('cellgate_test_seconds_bucket{le="0.01",codec="x"} 3');
    expect(text).toContain('cellgate_test_seconds_bucket{le="+Inf",codec="x"} 4');
    expect(text).toContain('cellgate_test_seconds_sum{codec="x"} 0.5065');
    expect(text).toContain('cellgate_test_seconds_count{codec="x"} 4');
    const json = await registry.getMetricsAsJSON();
    expect(json.map((m) => m.name)).toEqual(['cellgate_test_things_total', 'cellgate_test_seconds']);
  });
});
