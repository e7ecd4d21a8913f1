/**
 * Gateway-level metrics: build, readiness, the device registry's size and device-file reloads, and the
 * listeners' sockets. Every value is read through a plain getter when Prometheus scrapes, so this module
 * knows no listener or registry class: the composition root (app.ts) says where each value comes from.
 */
import { Gauge } from 'prom-client';
import { counterFrom, gaugeFrom, type MetricsRegistry } from '../ops/metrics.js';
import { packageVersion } from '../ops/version.js';

export interface GatewayMetricSources {
  /** Reasons the gateway is not ready; empty when ready. */
  notReady(): string[];
  draining(): boolean;
  /** Devices in the registry. */
  devices(): number;
  /** The device file's reloads by outcome and when it last loaded (ms since the epoch); absent for other registries. */
  deviceFile?: {
    reloads(): Readonly<Record<string, number>>;
    loadedAt(): number;
  };
  /** The NoSec listener, when it runs: socket errors, peers tracked, datagrams from source port 0. */
  nosec?: {
    socketErrors(): number;
    peers(): number;
    portZero(): number;
  };
  /** The DTLS listener's socket errors, when it runs. */
  dtlsSocketErrors?(): number;
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
  gaugeFrom(r, 'cellgate_devices', 'Devices in the registry.', () => src.devices());
  const file = src.deviceFile;
  if (file) {
    counterFrom(
      r,
      'cellgate_registry_reloads_total',
      'Device file reloads (file change or SIGHUP), by outcome: ok, or rejected (invalid; the devices loaded before stay).',
      () => file.reloads(),
      'outcome',
    );
    gaugeFrom(
      r,
      'cellgate_registry_loaded_timestamp_seconds',
      'When the device file was last loaded successfully (Unix time).',
      () => file.loadedAt() / 1000,
    );
  }
  const nosec = src.nosec;
  const dtlsSocketErrors = src.dtlsSocketErrors;
  counterFrom(
    r,
    'cellgate_udp_socket_errors_total',
    'Errors the UDP sockets reported (the listener keeps running), by listener.',
    () => {
      const counts: Record<string, number> = {};
      if (nosec) counts.nosec = nosec.socketErrors();
      if (dtlsSocketErrors) counts.dtls = dtlsSocketErrors();
      return counts;
    },
    'listener',
  );
  if (nosec) {
    gaugeFrom(r, 'cellgate_nosec_peers', 'NoSec peers (addresses) tracked.', () => nosec.peers());
    counterFrom(
      r,
      'cellgate_udp_datagrams_ignored_total',
      'Datagrams ignored before any protocol layer, by reason (source_port_0: nothing can be sent back).',
      () => ({ source_port_0: nosec.portZero() }),
      'reason',
    );
  }
}
