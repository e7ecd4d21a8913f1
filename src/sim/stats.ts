/** What a simulation counts, its live progress line and its summary. */
import { codeString } from '../coap/constants.js';
import type { UplinkResult } from './coap-client.js';
import { LatencyRecorder } from './latency.js';

export interface SimSummary {
  devices: number;
  uplinks: number;
  sent: number;
  acknowledged: number;
  /**
   * Uplinks that did not succeed, by response code ("5.03") or "timeout" (no answer) / "reset" /
   * "unreachable" (nothing listens at the port); for DTLS also "handshake-timeout" and "handshake-refused"
   * (the gateway sent an alert: unknown identity or wrong key). Uplinks a device never sent because it had
   * no session count here too.
   */
  failed: Record<string, number>;
  downlinks: number;
  retransmissions: number;
  separateResponses: number;
  /** Request messages, counting each Block1 block and Block2 follow-up. */
  messages: number;
  rebinds: number;
  handshakes: number;
  durationMs: number;
  /** Acknowledged uplinks per second. */
  ratePerSecond: number;
  /** Latency of acknowledged uplinks, first transmission to final response; null when none was acknowledged. */
  latencyMs: { min: number; p50: number; p90: number; p99: number; max: number; mean: number } | null;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export class SimStats {
  readonly latency = new LatencyRecorder();
  sent = 0;
  acknowledged = 0;
  downlinks = 0;
  retransmissions = 0;
  separateResponses = 0;
  messages = 0;
  rebinds = 0;
  handshakes = 0;
  /** DTLS handshakes in progress. */
  handshaking = 0;
  readonly failed = new Map<string, number>();
  readonly started = performance.now();

  constructor(
    readonly devices: number,
    readonly uplinks: number,
  ) {}

  fail(reason: string, n = 1): void {
    this.failed.set(reason, (this.failed.get(reason) ?? 0) + n);
  }

  add(r: UplinkResult): void {
    this.retransmissions += r.retransmissions;
    this.messages += r.messages;
    // A separate response that came (not the wait for one that never did).
    if (r.separate && r.code !== 0) this.separateResponses++;
    if (r.outcome === 'ok') {
      this.acknowledged++;
      this.latency.record(r.latencyMs);
      if (r.downlink !== undefined) this.downlinks++;
    } else if (r.outcome === 'error') this.fail(codeString(r.code));
    else this.fail(r.outcome);
  }

  get failedCount(): number {
    let n = 0;
    for (const v of this.failed.values()) n += v;
    return n;
  }

  get elapsedMs(): number {
    return performance.now() - this.started;
  }

  progressLine(): string {
    const s = this.elapsedMs / 1000;
    const l = this.latency;
    return (
      `[${s.toFixed(1)}s] sent ${this.sent}/${this.uplinks}  acked ${this.acknowledged}  ` +
      `failed ${this.failedCount}  downlinks ${this.downlinks}  ` +
      `in flight ${Math.max(0, this.sent - this.acknowledged - this.failedCount)}  ` +
      (this.handshaking ? `handshaking ${this.handshaking}  ` : '') +
      `${Math.round(this.acknowledged / Math.max(s, 0.001))}/s  ` +
      (l.count
        ? `p50 ${l.quantile(0.5).toFixed(1)} ms  p99 ${l.quantile(0.99).toFixed(1)} ms`
        : 'p50 n/a  p99 n/a')
    );
  }

  summary(): SimSummary {
    const ms = this.elapsedMs;
    const l = this.latency;
    return {
      devices: this.devices,
      uplinks: this.uplinks,
      sent: this.sent,
      acknowledged: this.acknowledged,
      failed: Object.fromEntries([...this.failed].sort()),
      downlinks: this.downlinks,
      retransmissions: this.retransmissions,
      separateResponses: this.separateResponses,
      messages: this.messages,
      rebinds: this.rebinds,
      handshakes: this.handshakes,
      durationMs: Math.round(ms),
      ratePerSecond: Math.round((this.acknowledged / Math.max(ms, 1)) * 1000 * 10) / 10,
      latencyMs: l.count
        ? {
            min: round(l.min),
            p50: round(l.quantile(0.5)),
            p90: round(l.quantile(0.9)),
            p99: round(l.quantile(0.99)),
            max: round(l.max),
            mean: round(l.mean),
          }
        : null,
    };
  }
}

/** The summary for people. */
export function formatSummary(s: SimSummary): string {
  const reasons = Object.entries(s.failed);
  const failed = reasons.map(([k, v]) => `${k} × ${v}`).join(', ');
  const failedCount = reasons.reduce((n, [, v]) => n + v, 0);
  const l = s.latencyMs;
  const notSent = s.uplinks - s.sent;
  return [
    `devices            ${s.devices}`,
    `uplinks sent       ${s.sent} of ${s.uplinks}${notSent ? `  (${notSent} not sent)` : ''}`,
    `acknowledged       ${s.acknowledged}`,
    `failed             ${failedCount}${failed ? `  (${failed})` : ''}`,
    `downlinks received ${s.downlinks}`,
    `retransmissions    ${s.retransmissions}   separate responses ${s.separateResponses}`,
    `messages           ${s.messages}   rebinds ${s.rebinds}   handshakes ${s.handshakes}`,
    `duration           ${(s.durationMs / 1000).toFixed(2)} s   ${s.ratePerSecond} acknowledged/s`,
    l
      ? `latency ms         p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  (min ${l.min}, mean ${l.mean})`
      : 'latency ms         n/a (nothing acknowledged)',
    '',
  ].join('\n');
}
