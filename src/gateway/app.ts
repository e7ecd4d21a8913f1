/**
 * Assembles and starts a gateway from its configuration: registry, codecs, publisher, CoAP endpoint,
 * listeners and the HTTP side port. Used by the CLI and, in-process, by the tests and benchmarks.
 */
import { CoapEndpoint } from '../coap/endpoint.js';
import type { UplinkDecoder } from '../codecs/codec.js';
import rawCodec from '../../codecs/raw/index.js';
import type { LoadedConfig } from '../config/load.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { FileRegistry } from '../devices/file-registry.js';
import { HttpSidePort } from '../ops/http.js';
import { createLogger, type Logger } from '../ops/logger.js';
import { CapReporter, createMetricsRegistry, gaugeFrom, type MetricsRegistry } from '../ops/metrics.js';
import { createPublisher } from '../publish/index.js';
import type { Publisher } from '../publish/publisher.js';
import { compileTopic } from '../publish/topic.js';
import { createDtlsListener, type DtlsListener } from '../dtls/listener.js';
import { NoSecListener } from '../transport/nosec.js';
import { bindUdp } from '../transport/udp.js';
import { Downloads } from './downloads.js';
import { Gateway } from './gateway.js';

export interface GatewayOverrides {
  log?: Logger;
  publisher?: Publisher;
  registry?: DeviceRegistry;
  decoder?: UplinkDecoder;
}

export interface RunningGateway {
  readonly config: LoadedConfig['config'];
  readonly ports: { coap?: number; dtls?: number; http: number };
  readonly endpoint: CoapEndpoint;
  readonly gateway: Gateway;
  readonly publisher: Publisher;
  readonly registry: DeviceRegistry;
  readonly metrics: MetricsRegistry;
  readonly http: HttpSidePort;
  readonly log: Logger;
  /** Reasons the gateway is not ready for traffic; empty when ready. */
  notReady(): string[];
  close(): Promise<void>;
}

/** Until a device's codec says otherwise, uplinks are kept as raw bytes. */
async function rawDecoder(): Promise<UplinkDecoder> {
  const codec = await rawCodec.create({}, { baseDir: '.' });
  return {
    decode: (_device, bytes, ctx) => {
      const out = codec.decodeUplink(bytes, ctx) as { data: unknown };
      return { codec: codec.name, data: out.data };
    },
  };
}

export async function startGateway(
  loaded: LoadedConfig,
  overrides: GatewayOverrides = {},
): Promise<RunningGateway> {
  const { config } = loaded;
  const log = overrides.log ?? createLogger(config.log.level);
  const metrics = createMetricsRegistry();
  const caps = new CapReporter(metrics, log);
  const closers: (() => Promise<void> | void)[] = [() => caps.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const registry = overrides.registry ?? new FileRegistry(config.devices.file, log, config.devices.watch);
    closers.push(() => registry.close());
    gaugeFrom(metrics, 'cellgate_devices', 'Devices in the registry.', () => registry.size);
    const decoder = overrides.decoder ?? (await rawDecoder());
    const publisher =
      overrides.publisher ?? (await createPublisher(config.publisher, { log, metrics, caps }));
    closers.push(() => publisher.close());
    const downloads = new Downloads(config.downloads, log, (n) => caps.hit('download_cache_bytes', n));
    gaugeFrom(
      metrics,
      'cellgate_download_cache_bytes',
      'Bytes of download files cached in memory.',
      () => downloads.cacheBytes,
    );
    const gateway = new Gateway({
      registry,
      decoder,
      publisher,
      downloads,
      topic: compileTopic(config.publisher.topic),
      identity: config.coap.identity,
      log,
      metrics,
    });
    const coap = config.coap;
    const endpoint = new CoapEndpoint(
      {
        transmission: coap.transmission,
        piggybackWindowMs: coap.piggybackWindowMs,
        maxMessageBytes: coap.maxMessageBytes,
        dedup: coap.dedup,
        blockwise: coap.blockwise,
        maxInFlight: coap.maxInFlight,
      },
      gateway,
      { log, metrics, caps },
    );
    closers.push(() => endpoint.close());

    let nosec: NoSecListener | undefined;
    if (coap.nosec) {
      const socket = await bindUdp({ bind: coap.bind, port: coap.port, bufferBytes: coap.socketBufferBytes });
      nosec = new NoSecListener(socket, endpoint, {
        maxPeers: coap.peers.maxEntries,
        idleMs: 60_000,
        onCap: (n) => caps.hit('nosec_peers', n),
      });
      const listener = nosec;
      closers.push(() => listener.close());
      gaugeFrom(
        metrics,
        'cellgate_nosec_peers',
        'NoSec peers (addresses) tracked.',
        () => listener.peerCount,
      );
    }

    let dtls: DtlsListener | undefined;
    if (config.dtls.enabled) {
      const listener = await createDtlsListener({
        bind: coap.bind,
        port: coap.dtlsPort,
        socketBufferBytes: coap.socketBufferBytes,
        config: config.dtls,
        registry,
        log,
        metrics,
        caps,
        onApplicationData: (data, peer) => endpoint.receive(data, peer),
        onSessionClosed: (peer) => endpoint.dropPeer(peer),
      });
      dtls = listener;
      closers.push(() => listener.close());
      // A device removed or given a new key loses its session.
      closers.push(registry.onChange((c) => c.removed.forEach((id) => listener.server.endSessionsOf(id))));
    }

    let draining = false;
    const notReady = (): string[] => {
      const reasons: string[] = [];
      if (draining) reasons.push('draining');
      if (!publisher.ready()) reasons.push('publisher not accepting');
      return reasons;
    };
    const http = new HttpSidePort(metrics, { notReady }, log);
    const httpPort = await http.listen(config.http.bind, config.http.port);
    closers.push(() => http.close());

    log.info(
      {
        coap: nosec ? `${coap.bind}:${nosec.port}` : 'off',
        dtls: dtls ? `${coap.bind}:${dtls.port}` : 'off',
        http: `${config.http.bind}:${httpPort}`,
        devices: registry.size,
      },
      'cellgate listening',
    );
    return {
      config,
      ports: { coap: nosec?.port, dtls: dtls?.port, http: httpPort },
      endpoint,
      gateway,
      publisher,
      registry,
      metrics,
      http,
      log,
      notReady,
      close: async () => {
        draining = true;
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
