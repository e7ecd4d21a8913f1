import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

describe('CapReporter', () => {
  it('counts every hit in cellgate_cap_hits_total and logs at most once per interval per cap', async () => {
    const registry = createMetricsRegistry(false);
    const { log, lines } = capture();
    const caps = new CapReporter(registry, log, 60_000);
    for (let i = 0; i < 1000; i++) caps.hit('coap_dedup');
    caps.hit('block1_bytes', 3);
    expect(await registry.metrics()).toMatch(/cellgate_cap_hits_total\{cap="coap_dedup"\} 1000/);
    expect(await registry.metrics()).toMatch(/cellgate_cap_hits_total\{cap="block1_bytes"\} 3/);
    expect(lines.filter((l) => l.cap === 'coap_dedup')).toHaveLength(1);
    expect(lines.find((l) => l.cap === 'block1_bytes')).toMatchObject({ level: 40, hits: 3 });
    caps.report();
    expect(lines).toHaveLength(2);
    caps.close();
  });

  it('logs the hits accumulated since the last line once the interval has passed', () => {
    const registry = createMetricsRegistry(false);
    const { log, lines } = capture();
    const caps = new CapReporter(registry, log, 0);
    caps.hit('x');
    caps.hit('x', 4);
    caps.report();
    expect(lines.map((l) => l.hits)).toEqual([1, 4]);
    caps.close();
  });
});
