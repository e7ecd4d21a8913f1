/** Metrics of the shared state store: round-trip latency and errors by operation, and whether it is reachable. */
import { Counter, Histogram } from 'prom-client';
import { gaugeFrom, type MetricsRegistry } from '../ops/metrics.js';
import type { StoreObserver } from './redis-session-store.js';
import type { SharedState } from './shared.js';

export function registerStoreMetrics(r: MetricsRegistry, state: SharedState): StoreObserver {
  const seconds = new Histogram({
    name: 'cellgate_state_store_seconds',
    help: 'Round-trip time of session store calls, by operation (create, claim, lease, checkpoint, remove, unclaim).',
    labelNames: ['op'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [r],
  });
  const errors = new Counter({
    name: 'cellgate_state_store_errors_total',
    help: 'Session store calls that failed or timed out, by operation.',
    labelNames: ['op'],
    registers: [r],
  });
  gaugeFrom(r, 'cellgate_state_store_up', '1 while the Redis state store is connected, else 0.', () =>
    state.redis?.ready ? 1 : 0,
  );
  return (op, s, failed) => {
    seconds.observe({ op }, s);
    if (failed) errors.inc({ op });
  };
}
