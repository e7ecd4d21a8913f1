/**
 * DTLS counters. The record path increments plain numbers; Prometheus reads them at scrape time.
 */
import { counterFrom, gaugeFrom, zeroCounts, type MetricsRegistry } from '../../ops/metrics.js';

/** Why a handshake failed (label `reason` of cellgate_dtls_handshakes_failed_total). */
export const HANDSHAKE_FAILURES = [
  'unknown_identity',
  'bad_key',
  'no_common_suite',
  'no_extended_master_secret',
  'protocol_version',
  'bad_message',
  'timeout',
  'peer_alert',
  'replaced',
  'evicted',
  'lookup_error',
  'closed',
  'no_certificate',
  'bad_certificate',
  'unknown_ca',
  'certificate_expired',
  'bad_signature',
  'unmapped',
  'unknown_key',
  'bad_key_share',
  'revoked',
  'not_attached',
  'not_registered',
] as const;
export type HandshakeFailure = (typeof HANDSHAKE_FAILURES)[number];

/** Why a record was dropped (label `reason` of cellgate_dtls_records_dropped_total). */
export const DROP_REASONS = [
  'malformed',
  'unknown_cid',
  'no_session',
  'replay',
  'bad_mac',
  'handshake_bad_mac',
  'unexpected',
  'bad_hello',
  'handshake_cap',
  'reassembly_cap',
  'too_large',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export class DtlsStats {
  handshakesStarted = 0;
  handshakesCompleted = 0;
  helloVerifyRequests = 0;
  flightsRetransmitted = 0;
  cidAddressUpdates = 0;
  recordsIn = 0;
  recordsOut = 0;
  readonly handshakesFailed = zeroCounts(HANDSHAKE_FAILURES);
  readonly recordsDropped = zeroCounts(DROP_REASONS);
}

type DtlsGauges = { sessions(): number; handshakes(): number; reassemblyBytes(): number };

interface DtlsSource {
  stats: DtlsStats;
  gauges: DtlsGauges;
}

/** The DTLS servers of each registry (CoAP's and raw UDP's): their metrics are one set, summed. */
const sources = new WeakMap<MetricsRegistry, DtlsSource[]>();

function sum(list: DtlsSource[], read: (s: DtlsSource) => number): number {
  let n = 0;
  for (const s of list) n += read(s);
  return n;
}

function sumRecords<K extends string>(
  list: DtlsSource[],
  keys: readonly K[],
  read: (s: DtlsStats) => Record<K, number>,
): Record<K, number> {
  const out = zeroCounts(keys);
  for (const s of list) {
    const r = read(s.stats);
    for (const k of keys) out[k] += r[k];
  }
  return out;
}

const NO_GAUGES: DtlsGauges = { sessions: () => 0, handshakes: () => 0, reassemblyBytes: () => 0 };

/** Adds what a closed server counted to the registry's first source, which holds the closed servers' sum. */
function addInto(into: DtlsStats, from: DtlsStats): void {
  const to = into as unknown as Record<string, number | Record<string, number>>;
  for (const [field, value] of Object.entries(from) as [string, number | Record<string, number>][]) {
    if (typeof value === 'number') (to[field] as number) += value;
    else for (const [reason, n] of Object.entries(value)) (to[field] as Record<string, number>)[reason] += n;
  }
}

/**
 * Registers a server's counters; a second server on the same registry adds to the same metrics. Returns the
 * call that retires the server when it closes: its counts stay in the counters (a counter never goes down),
 * its gauges leave, and the registry no longer holds the server.
 */
export function registerDtlsMetrics(
  registry: MetricsRegistry,
  stats: DtlsStats,
  gauges: DtlsGauges,
): () => void {
  const known = sources.get(registry);
  // The first source is the closed servers' sum: no gauges, counts added when a server retires.
  const list: DtlsSource[] = known ?? [{ stats: new DtlsStats(), gauges: NO_GAUGES }];
  const source: DtlsSource = { stats, gauges };
  list.push(source);
  const retire = (): void => {
    const i = list.indexOf(source);
    if (i <= 0) return;
    list.splice(i, 1);
    addInto(list[0].stats, stats);
  };
  if (known) return retire;
  sources.set(registry, list);
  counterFrom(
    registry,
    'cellgate_dtls_handshakes_started_total',
    'DTLS handshakes started (ClientHello with a valid cookie).',
    () => sum(list, (s) => s.stats.handshakesStarted),
  );
  counterFrom(registry, 'cellgate_dtls_handshakes_completed_total', 'DTLS handshakes completed.', () =>
    sum(list, (s) => s.stats.handshakesCompleted),
  );
  counterFrom(
    registry,
    'cellgate_dtls_handshakes_failed_total',
    'DTLS handshakes that failed, by reason.',
    () => sumRecords(list, HANDSHAKE_FAILURES, (s) => s.handshakesFailed),
    'reason',
  );
  counterFrom(
    registry,
    'cellgate_dtls_hello_verify_requests_total',
    'HelloVerifyRequests sent (ClientHellos without a valid cookie).',
    () => sum(list, (s) => s.stats.helloVerifyRequests),
  );
  counterFrom(
    registry,
    'cellgate_dtls_flights_retransmitted_total',
    'Handshake flights the server sent again (timer or peer retransmission).',
    () => sum(list, (s) => s.stats.flightsRetransmitted),
  );
  counterFrom(
    registry,
    'cellgate_dtls_cid_address_updates_total',
    'Sessions whose peer address moved on an authenticated Connection ID record (NAT rebinding).',
    () => sum(list, (s) => s.stats.cidAddressUpdates),
  );
  counterFrom(
    registry,
    'cellgate_dtls_records_dropped_total',
    'Incoming DTLS records dropped, by reason.',
    () => sumRecords(list, DROP_REASONS, (s) => s.recordsDropped),
    'reason',
  );
  counterFrom(registry, 'cellgate_dtls_records_in_total', 'DTLS records received.', () =>
    sum(list, (s) => s.stats.recordsIn),
  );
  counterFrom(registry, 'cellgate_dtls_records_out_total', 'DTLS records sent.', () =>
    sum(list, (s) => s.stats.recordsOut),
  );
  gaugeFrom(registry, 'cellgate_dtls_sessions_active', 'Established DTLS sessions.', () =>
    sum(list, (s) => s.gauges.sessions()),
  );
  gaugeFrom(registry, 'cellgate_dtls_handshakes_active', 'DTLS handshakes in progress.', () =>
    sum(list, (s) => s.gauges.handshakes()),
  );
  gaugeFrom(
    registry,
    'cellgate_dtls_reassembly_bytes',
    'Bytes held by all DTLS handshakes for fragmented or out-of-order handshake messages (cap: dtls.maxReassemblyBytes).',
    () => sum(list, (s) => s.gauges.reassemblyBytes()),
  );
  return retire;
}
