import { describe, expect, it } from 'vitest';
import { Code } from '../../src/coap/constants.js';
import { CoapStats, registerCoapMetrics, type CoapReadings } from '../../src/coap/metrics.js';
import { createMetricsRegistry } from '../../src/ops/metrics.js';

function setup() {
  const registry = createMetricsRegistry(false);
  const stats = new CoapStats();
  const readings = { hits: 0, inFlight: 0 };
  const read: CoapReadings = {
    dedupHits: () => readings.hits,
    inFlight: () => readings.inFlight,
    block1Transfers: () => ({ started: 3, completed: 2, failed: 1 }),
    cacheEntries: () => ({ dedup: 10, block1: 1, block2: 2, separate: 4 }),
    cacheBytes: () => ({ dedup: 1000, block1: 64, block2: 2048 }),
  };
  registerCoapMetrics(registry, stats, read);
  return { registry, stats, readings };
}

describe('CoAP endpoint metrics', () => {
  it('reads the plain counters at scrape time', async () => {
    const { registry, stats, readings } = setup();
    stats.datagramsIn = 7;
    stats.datagramsOut = 5;
    stats.separateResponses = 2;
    stats.retransmissions = 3;
    stats.unacknowledged = 1;
    readings.hits = 4;
    readings.inFlight = 6;
    const text = await registry.metrics();
    expect(text).toMatch(/^cellgate_coap_datagrams_received_total 7$/m);
    expect(text).toMatch(/^cellgate_coap_datagrams_sent_total 5$/m);
    expect(text).toMatch(/^cellgate_coap_dedup_hits_total 4$/m);
    expect(text).toMatch(/^cellgate_coap_separate_responses_total 2$/m);
    expect(text).toMatch(/^cellgate_coap_retransmissions_total 3$/m);
    expect(text).toMatch(/^cellgate_coap_unacknowledged_total 1$/m);
    expect(text).toMatch(/^cellgate_coap_exchanges_in_flight 6$/m);
    expect(text).toMatch(/^cellgate_coap_block1_transfers_total\{outcome="failed"\} 1$/m);
    expect(text).toMatch(/^cellgate_coap_cache_entries\{cache="separate"\} 4$/m);
    expect(text).toMatch(/^cellgate_coap_cache_bytes\{cache="block2"\} 2048$/m);
  });

  it('lists a rejection reason once it occurred', async () => {
    const { registry, stats } = setup();
    stats.rejected.busy += 2;
    stats.rejected.format_error++;
    const text = await registry.getSingleMetricAsString('cellgate_coap_rejected_total');
    expect(text).toContain('cellgate_coap_rejected_total{reason="busy"} 2');
    expect(text).toContain('cellgate_coap_rejected_total{reason="format_error"} 1');
    expect(text).not.toContain('draining');
  });

  it('counts responses by method name and code, and numbers a method without a name', async () => {
    const { registry, stats } = setup();
    stats.countResponse(Code.POST, Code.CHANGED);
    stats.countResponse(Code.POST, Code.CHANGED);
    stats.countResponse(Code.GET, Code.CONTENT);
    stats.countResponse(12, Code.METHOD_NOT_ALLOWED);
    const text = await registry.getSingleMetricAsString('cellgate_coap_requests_total');
    expect(text).toContain('cellgate_coap_requests_total{method="POST",code="2.04"} 2');
    expect(text).toContain('cellgate_coap_requests_total{method="GET",code="2.05"} 1');
    expect(text).toContain('cellgate_coap_requests_total{method="12",code="4.05"} 1');
    expect(text.match(/^cellgate_coap_requests_total\{/gm)).toHaveLength(3);
  });
});
