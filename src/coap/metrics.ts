/**
 * CoAP endpoint counters. The message path increments plain numbers; Prometheus reads them at scrape time,
 * with the endpoint's caches and exchanges in flight read through getters.
 */
import { Counter } from 'prom-client';
import { counterFrom, gaugeFrom, zeroCounts, type MetricsRegistry } from '../ops/metrics.js';
import { codeString, METHOD_NAMES } from './constants.js';

/** Why a datagram went no further than the endpoint (label `reason` of cellgate_coap_rejected_total). */
export const REJECT_REASONS = [
  'ignored',
  'format_error',
  'empty_non',
  'unexpected_response',
  'non_empty_rst',
  'request_in_ack',
  'bad_option_non',
  'draining',
  'busy',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export class CoapStats {
  datagramsIn = 0;
  datagramsOut = 0;
  separateResponses = 0;
  retransmissions = 0;
  /** Separate CON responses given up on after MAX_RETRANSMIT. */
  unacknowledged = 0;
  readonly rejected = zeroCounts(REJECT_REASONS);
  /** Responses by request method (0-31) × response code (0-255). */
  readonly responses = new Float64Array(32 * 256);

  countResponse(method: number, code: number): void {
    this.responses[((method & 31) << 8) | (code & 0xff)]++;
  }
}

/** What the metrics read from the endpoint's parts at scrape time. */
export interface CoapReadings {
  dedupHits(): number;
  inFlight(): number;
  block1Transfers(): { started: number; completed: number; failed: number };
  cacheEntries(): { dedup: number; block1: number; block2: number; separate: number };
  cacheBytes(): { dedup: number; block1: number; block2: number };
}

/** The reasons that occurred (a reason appears in the metric once it has). */
function occurred(counts: Readonly<Record<RejectReason, number>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const reason of REJECT_REASONS) if (counts[reason] !== 0) out.set(reason, counts[reason]);
  return out;
}

export function registerCoapMetrics(r: MetricsRegistry, stats: CoapStats, read: CoapReadings): void {
  counterFrom(
    r,
    'cellgate_coap_datagrams_received_total',
    'CoAP datagrams received.',
    () => stats.datagramsIn,
  );
  counterFrom(r, 'cellgate_coap_datagrams_sent_total', 'CoAP datagrams sent.', () => stats.datagramsOut);
  counterFrom(
    r,
    'cellgate_coap_dedup_hits_total',
    'Retransmitted requests answered from the dedup cache.',
    () => read.dedupHits(),
  );
  counterFrom(
    r,
    'cellgate_coap_rejected_total',
    'Datagrams rejected or ignored before reaching the gateway, by reason.',
    () => occurred(stats.rejected),
    'reason',
  );
  counterFrom(
    r,
    'cellgate_coap_separate_responses_total',
    'Responses sent separately after an empty ACK.',
    () => stats.separateResponses,
  );
  counterFrom(
    r,
    'cellgate_coap_retransmissions_total',
    'CON responses retransmitted.',
    () => stats.retransmissions,
  );
  counterFrom(
    r,
    'cellgate_coap_unacknowledged_total',
    'CON responses never acknowledged.',
    () => stats.unacknowledged,
  );
  gaugeFrom(
    r,
    'cellgate_coap_exchanges_in_flight',
    'Requests handed to the gateway and not yet answered.',
    () => read.inFlight(),
  );
  counterFrom(
    r,
    'cellgate_coap_block1_transfers_total',
    'Block1 uploads by outcome.',
    () => read.block1Transfers(),
    'outcome',
  );
  gaugeFrom(
    r,
    'cellgate_coap_cache_entries',
    'Entries held in CoAP caches.',
    () => read.cacheEntries(),
    'cache',
  );
  gaugeFrom(r, 'cellgate_coap_cache_bytes', 'Bytes held in CoAP caches.', () => read.cacheBytes(), 'cache');
  const counts = stats.responses;
  new Counter({
    name: 'cellgate_coap_requests_total',
    help: 'Requests by method and response code.',
    labelNames: ['method', 'code'],
    registers: [r],
    collect() {
      this.reset();
      for (let i = 0; i < counts.length; i++) {
        const n = counts[i];
        if (n === 0) continue;
        const method = i >> 8;
        this.inc({ method: METHOD_NAMES[method] ?? String(method), code: codeString(i & 0xff) }, n);
      }
    },
  });
}
