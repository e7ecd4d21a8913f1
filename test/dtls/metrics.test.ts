/**
 * The DTLS metrics of several servers on one registry: summed while they run, and a closed server's counts
 * kept in the counters (which never go down) while its gauges leave.
 */
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../src/ops/metrics.js';
import { DtlsStats, registerDtlsMetrics } from '../../src/dtls/server/metrics.js';

async function value(
  r: ReturnType<typeof createMetricsRegistry>,
  name: string,
  label?: string,
): Promise<number> {
  const m = (await r.getMetricsAsJSON()).find((x) => x.name === name);
  const values = (m?.values ?? []) as { value: number; labels: Record<string, string> }[];
  const v = values.find((x) => label === undefined || x.labels.reason === label);
  return v?.value ?? 0;
}

describe('registerDtlsMetrics', () => {
  it('sums the servers of a registry; a retired server keeps its counts and drops its gauges', async () => {
    const r = createMetricsRegistry(false);
    const a = new DtlsStats();
    const b = new DtlsStats();
    let aSessions = 3;
    const retireA = registerDtlsMetrics(r, a, {
      sessions: () => aSessions,
      handshakes: () => 1,
      reassemblyBytes: () => 100,
    });
    registerDtlsMetrics(r, b, { sessions: () => 2, handshakes: () => 0, reassemblyBytes: () => 0 });
    a.handshakesCompleted = 5;
    b.handshakesCompleted = 7;
    a.recordsDropped.replay = 4;
    b.recordsDropped.replay = 1;
    a.handshakesFailed.bad_key = 2;
    expect(await value(r, 'cellgate_dtls_handshakes_completed_total')).toBe(12);
    expect(await value(r, 'cellgate_dtls_records_dropped_total', 'replay')).toBe(5);
    expect(await value(r, 'cellgate_dtls_sessions_active')).toBe(5);
    expect(await value(r, 'cellgate_dtls_reassembly_bytes')).toBe(100);

    aSessions = 0;
    retireA();
    // Counts of the retired server after it left are not counted twice, nor are its later increments.
    a.handshakesCompleted = 50;
    retireA();
    expect(await value(r, 'cellgate_dtls_handshakes_completed_total')).toBe(12);
    expect(await value(r, 'cellgate_dtls_records_dropped_total', 'replay')).toBe(5);
    expect(await value(r, 'cellgate_dtls_handshakes_failed_total', 'bad_key')).toBe(2);
    expect(await value(r, 'cellgate_dtls_sessions_active')).toBe(2);
    expect(await value(r, 'cellgate_dtls_handshakes_active')).toBe(0);
    expect(await value(r, 'cellgate_dtls_reassembly_bytes')).toBe(0);

    // A server made after that adds to the same metrics.
    const c = new DtlsStats();
    registerDtlsMetrics(r, c, { sessions: () => 1, handshakes: () => 0, reassemblyBytes: () => 0 });
    c.handshakesCompleted = 1;
    expect(await value(r, 'cellgate_dtls_handshakes_completed_total')).toBe(13);
    expect(await value(r, 'cellgate_dtls_sessions_active')).toBe(3);
  });
});
