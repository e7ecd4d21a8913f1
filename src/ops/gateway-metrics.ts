/**
 * Gateway-level metrics: build, readiness, the device registry's reloads, and the NoSec listener's socket.
 * Every value is read when Prometheus scrapes.
 */
import { Gauge } from 'prom-client';
import type { DeviceRegistry } from '../devices/registry.js';
import { FileRegistry } from '../devices/file-registry.js';
import type { NoSecListener } from '../transport/nosec.js';
import { counterFrom, gaugeFrom, type MetricsRegistry } from './metrics.js';
import { packageVersion } from './version.js';

export interface GatewayMetricSources {
  registry: DeviceRegistry;
  /** Reasons the gateway is not ready; empty when ready. */
  notReady(): string[];
  draining(): boolean;
  nosec?: NoSecListener;
  dtls?: { readonly socketErrors: number };
}

export function registerGatewayMetrics(r: MetricsRegistry, src: GatewayMetricSources): void {
  const info = new Gauge({
    name: 'cellgate_build_info',
    help: 'Always 1; the labels say which cellgate and Node.js run.',
    labelNames: ['version', 'node'],
    registers: [r],
  });
  info.set({ version: packageVersion(), node: process.versions.node }, 1);
  gaugeFrom(r, 'cellgate_ready', '1 when /readyz answers 200, else 0.', () =>
    src.notReady().length ? 0 : 1,
  );
  gaugeFrom(r, 'cellgate_draining', '1 from SIGTERM until exit, else 0.', () => (src.draining() ? 1 : 0));
  gaugeFrom(r, 'cellgate_devices', 'Devices in the registry.', () => src.registry.size);
  const registry = src.registry;
  if (registry instanceof FileRegistry) {
    counterFrom(
      r,
      'cellgate_registry_reloads_total',
      'Device file reloads (file change or SIGHUP), by outcome: ok, or rejected (invalid; the devices loaded before stay).',
      () => registry.reloadCounts,
      'outcome',
    );
    gaugeFrom(
      r,
      'cellgate_registry_loaded_timestamp_seconds',
      'When the device file was last loaded successfully (Unix time).',
      () => registry.loadedAt / 1000,
    );
  }
  const nosec = src.nosec;
  const dtls = src.dtls;
  counterFrom(
    r,
    'cellgate_udp_socket_errors_total',
    'Errors the UDP sockets reported (the listener keeps running), by listener.',
    () => {
      const counts: Record<string, number> = {};
      if (nosec) counts.nosec = nosec.socketErrors;
      if (dtls) counts.dtls = dtls.socketErrors;
      return counts;
    },
    'listener',
  );
  if (nosec) {
    gaugeFrom(r, 'cellgate_nosec_peers', 'NoSec peers (addresses) tracked.', () => nosec.peerCount);
    counterFrom(
      r,
      'cellgate_udp_datagrams_ignored_total',
      'Datagrams ignored before any protocol layer, by reason (source_port_0: nothing can be sent back).',
      () => ({ source_port_0: nosec.portZero }),
      'reason',
    );
  }
}
