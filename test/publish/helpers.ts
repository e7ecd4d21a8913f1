/** Shared bits of the publisher tests: envelopes, messages, deps, delivery settings. */
import type { DeliveryConfig } from '../../src/config/publisher.js';
import type { Envelope } from '../../src/publish/envelope.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import { PublishError, type Publisher, type PublishMessage } from '../../src/publish/publisher.js';

export function envelope(messageId: string, deviceId = 'dev-1', extra: Partial<Envelope> = {}): Envelope {
  return {
    messageId,
    deviceId,
    thing: deviceId,
    receivedAt: '2025-01-01T00:00:00.000Z',
    path: 'telemetry',
    method: 'POST',
    transport: 'coap',
    remote: { address: '10.0.0.1', port: 5683 },
    coap: { type: 'CON', messageId: 1, token: 'ab' },
    contentFormat: null,
    codec: 'raw',
    raw: 'AQID',
    decoded: null,
    ...extra,
  };
}

export function message(id: string, topic = 'cellgate/dev-1/telemetry', deviceId = 'dev-1'): PublishMessage {
  return { id, topic, deviceId, thing: deviceId, envelope: envelope(id, deviceId) };
}

export function deps() {
  const log = silentLogger();
  const metrics = createMetricsRegistry(false);
  return { log, metrics, caps: new CapReporter(metrics, log) };
}

export function delivery(over: Partial<DeliveryConfig> = {}): DeliveryConfig {
  return {
    qos: 1,
    concurrency: 16,
    requestTimeoutMs: 2000,
    deadlineMs: 5000,
    queue: { maxEntries: 1000, maxBytes: 1 << 24 },
    retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
    breaker: { failureThreshold: 5, openMs: 200, maxOpenMs: 1000 },
    ...over,
  };
}

/** Publishes and resolves with the callback's error (null on success). */
export function publish(p: Publisher, msg: PublishMessage): Promise<PublishError | null> {
  return new Promise((resolve) => p.publish(msg, resolve));
}

/** Reads one sample of a metric from the registry (labels matched exactly). */
export async function metricValue(
  registry: ReturnType<typeof createMetricsRegistry>,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  const data = await m.get();
  const want = JSON.stringify(labels);
  for (const v of data.values as { labels: object; value: number; metricName?: string }[]) {
    if (JSON.stringify(v.labels) === want && !v.metricName?.endsWith('_bucket')) return v.value;
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { PublishError };
