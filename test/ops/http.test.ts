import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

describe('HTTP side port', () => {
  let gw: TestGateway;
  const url = (p: string) => `http://127.0.0.1:${gw.ports.http}${p}`;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(() => gw.stop());

  it('answers /healthz and /readyz', async () => {
    const h = await fetch(url('/healthz'));
    expect(h.status).toBe(200);
    const r = await fetch(url('/readyz'));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ready: true, reasons: [], store: { kind: 'memory' } });
    expect((await fetch(url('/nope'))).status).toBe(404);
  });

  it('exposes cellgate_ metrics for Prometheus', async () => {
    const res = await fetch(url('/metrics'));
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    for (const name of [
      'cellgate_coap_datagrams_received_total',
      'cellgate_coap_datagrams_sent_total',
      'cellgate_coap_requests_total',
      'cellgate_coap_dedup_hits_total',
      'cellgate_coap_block1_transfers_total',
      'cellgate_publish_duration_seconds',
      'cellgate_coap_cache_entries',
      'cellgate_coap_cache_bytes',
      'cellgate_devices',
      'cellgate_process_resident_memory_bytes',
    ]) {
      expect(text).toContain(name);
    }
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(names.every((n) => n.startsWith('cellgate_'))).toBe(true);
  });
});
