/**
 * DTLS counters. The record path increments plain numbers; Prometheus reads them at scrape time.
 */
import { counterFrom, gaugeFrom, type MetricsRegistry } from '../ops/metrics.js';

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

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  const o = Object.create(null) as Record<K, number>;
  for (const k of keys) o[k] = 0;
  return o;
}

export class DtlsStats {
  handshakesStarted = 0;
  handshakesCompleted = 0;
  helloVerifyRequests = 0;
  flightsRetransmitted = 0;
  cidAddressUpdates = 0;
  recordsIn = 0;
  recordsOut = 0;
  readonly handshakesFailed = zeros(HANDSHAKE_FAILURES);
  readonly recordsDropped = zeros(DROP_REASONS);
}

export function registerDtlsMetrics(
  registry: MetricsRegistry,
  stats: DtlsStats,
  gauges: { sessions(): number; handshakes(): number; reassemblyBytes(): number },
): void {
  counterFrom(
    registry,
    'cellgate_dtls_handshakes_started_total',
    'DTLS handshakes started (ClientHello with a valid cookie).',
    () => stats.handshakesStarted,
  );
  counterFrom(
    registry,
    'cellgate_dtls_handshakes_completed_total',
    'DTLS handshakes completed.',
    () => stats.handshakesCompleted,
  );
  counterFrom(
    registry,
    'cellgate_dtls_handshakes_failed_total',
    'DTLS handshakes that failed, by reason.',
    () => stats.handshakesFailed,
    'reason',
  );
  counterFrom(
    registry,
    'cellgate_dtls_hello_verify_requests_total',
    'HelloVerifyRequests sent (ClientHellos without a valid cookie).',
    () => stats.helloVerifyRequests,
  );
  counterFrom(
    registry,
    'cellgate_dtls_flights_retransmitted_total',
    'Handshake flights the server sent again (timer or peer retransmission).',
    () => stats.flightsRetransmitted,
  );
  counterFrom(
    registry,
    'cellgate_dtls_cid_address_updates_total',
    'Sessions whose peer address moved on an authenticated Connection ID record (NAT rebinding).',
    () => stats.cidAddressUpdates,
  );
  counterFrom(
    registry,
    'cellgate_dtls_records_dropped_total',
    'Incoming DTLS records dropped, by reason.',
    () => stats.recordsDropped,
    'reason',
  );
  counterFrom(registry, 'cellgate_dtls_records_in_total', 'DTLS records received.', () => stats.recordsIn);
  counterFrom(registry, 'cellgate_dtls_records_out_total', 'DTLS records sent.', () => stats.recordsOut);
  gaugeFrom(registry, 'cellgate_dtls_sessions_active', 'Established DTLS sessions.', gauges.sessions);
  gaugeFrom(registry, 'cellgate_dtls_handshakes_active', 'DTLS handshakes in progress.', gauges.handshakes);
  gaugeFrom(
    registry,
    'cellgate_dtls_reassembly_bytes',
    'Bytes held by all DTLS handshakes for fragmented or out-of-order handshake messages (cap: dtls.maxReassemblyBytes).',
    gauges.reassemblyBytes,
  );
}
