/** What a simulation counts, its live progress line and its summary. */
import { codeString } from '../coap/constants.js';
import type { UplinkResult } from './coap-client.js';
import { LatencyRecorder } from './latency.js';

export interface SimSummary {
  devices: number;
  uplinks: number;
  sent: number;
  acknowledged: number;
  /** Uplinks that did not succeed, by response code ("5.03") or "timeout" / "reset" / "connect". */
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
  /** Latency of acknowledged uplinks, first transmission to final response. */
  latencyMs: { min: number; p50: number; p90: number; p99: number; max: number; mean: number };
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
    if (r.separate) this.separateResponses++;
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
      `in flight ${this.sent - this.acknowledged - this.failedCount}  ` +
      `${Math.round(this.acknowledged / Math.max(s, 0.001))}/s  ` +
      `p50 ${l.quantile(0.5).toFixed(1)} ms  p99 ${l.quantile(0.99).toFixed(1)} ms`
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
      latencyMs: {
        min: round(l.count ? l.min : 0),
        p50: round(l.quantile(0.5)),
        p90: round(l.quantile(0.9)),
        p99: round(l.quantile(0.99)),
        max: round(l.max),
        mean: round(l.mean),
      },
    };
  }
}

/** The summary for people. */
export function formatSummary(s: SimSummary): string {
  const failed = Object.entries(s.failed)
    .map(([k, v]) => `${k} × ${v}`)
    .join(', ');
  const l = s.latencyMs;
  return [
    `devices            ${s.devices}`,
    `uplinks sent       ${s.sent} of ${s.uplinks}`,
    `acknowledged       ${s.acknowledged}`,
    `failed             ${s.sent - s.acknowledged}${failed ? `  (${failed})` : ''}`,
    `downlinks received ${s.downlinks}`,
    `retransmissions    ${s.retransmissions}   separate responses ${s.separateResponses}`,
    `messages           ${s.messages}   rebinds ${s.rebinds}   handshakes ${s.handshakes}`,
    `duration           ${(s.durationMs / 1000).toFixed(2)} s   ${s.ratePerSecond} acknowledged/s`,
    `latency ms         p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  (min ${l.min}, mean ${l.mean})`,
    '',
  ].join('\n');
}
