/**
 * Assembles and starts a gateway from its configuration: registry, codecs, publisher, CoAP endpoint,
 * listeners and the HTTP side port. Used by the CLI and, in-process, by the tests and benchmarks.
 */
import { exchangeLifetimeMs } from '../coap/constants.js';
import { CoapEndpoint } from '../coap/endpoint.js';
import type { UplinkDecoder } from '../codecs/codec.js';
import { CodecRegistry } from '../codecs/registry.js';
import { listenError } from '../config/errors.js';
import type { LoadedConfig } from '../config/load.js';
import { dtlsLookups } from '../devices/dtls-lookups.js';
import type { DeviceRegistry } from '../devices/registry.js';
import {
  createDownlinks,
  downlinksUseRedis,
  mountAdminApi,
  type DownlinkCodecs,
  type Downlinks,
} from '../downlink/index.js';
import { FileRegistry } from '../devices/file-registry.js';
import { HttpSidePort } from '../ops/http.js';
import { createLogger, type Logger } from '../ops/logger.js';
import {
  CapReporter,
  counterFrom,
  createMetricsRegistry,
  gaugeFrom,
  type MetricsRegistry,
} from '../ops/metrics.js';
import { drainAndClose, type ShutdownResult } from '../ops/shutdown.js';
import { socketErrorLog } from '../ops/socket-errors.js';
import { packageVersion } from '../ops/version.js';
import { createPublisher } from '../publish/index.js';
import type { Publisher } from '../publish/publisher.js';
import { compileTopic } from '../publish/topic.js';
import { createDtlsListener, type DtlsListener } from '../dtls/server/listener.js';
import { credentialTag } from '../dtls/server/sharing.js';
import { NoSecListener } from '../transport/nosec.js';
import { bindUdp } from '../transport/udp.js';
import { stateDeprecations } from '../config/state.js';
import { openSharedState } from '../state/shared.js';
import type { DedupStore } from '../state/dedup-store.js';
import { MemoryDedupStore } from '../state/memory-dedup-store.js';
import { RedisDedupStore } from '../state/redis-dedup-store.js';
import { RedisSessionStore } from '../state/redis-session-store.js';
import { registerStoreMetrics } from '../state/store-metrics.js';
import { Downloads } from './downloads.js';
import { Gateway } from './gateway.js';
import { registerGatewayMetrics } from './metrics.js';
import { identify } from './identity.js';
import { preflight } from './preflight.js';
import { mountFrameCounterAdmin } from './frame-counter-admin.js';
import { startRawUdp, type RawUdp } from './raw-udp.js';
import { AdminAuth } from '../ops/admin-auth.js';

export interface GatewayOverrides {
  log?: Logger;
  publisher?: Publisher;
  registry?: DeviceRegistry;
  decoder?: UplinkDecoder;
  /** Device codecs for downlinks (default: the codec registry). */
  downlinkCodecs?: DownlinkCodecs;
}

export interface RunningGateway {
  readonly config: LoadedConfig['config'];
  readonly ports: {
    coap?: number;
    dtls?: number;
    http: number;
    udp?: number;
    udpDtls?: number;
    radius?: number;
  };
  readonly endpoint: CoapEndpoint;
  readonly gateway: Gateway;
  /** Raw UDP listeners, RADIUS accounting and their stores. */
  readonly raw: RawUdp;
  readonly publisher: Publisher;
  readonly registry: DeviceRegistry;
  /** The downlink layer (undefined when `downlink.enabled` is false). */
  readonly downlinks?: Downlinks;
  readonly metrics: MetricsRegistry;
  readonly http: HttpSidePort;
  readonly log: Logger;
  /** Reasons the gateway is not ready for traffic; empty when ready. */
  notReady(): string[];
  /** Graceful shutdown (SIGTERM): drains as `shutdown` in the config says, then closes. */
  shutdown(signal?: string): Promise<ShutdownResult>;
  /** Closes at once; pending separate responses are abandoned. */
  close(): Promise<void>;
}

/** Where uplinks go, for the start-up line: the sink and its target (an MQTT URL without credentials). */
function uplinkDestination(p: LoadedConfig['config']['publisher']): string {
  switch (p.type) {
    case 'file':
      return `file ${p.path}`;
    case 'aws-iot':
      return `aws-iot ${p.endpoint || '(AWS_ENDPOINT_URL_IOT_DATA_PLANE)'}`;
    case 'mqtt':
      try {
        const url = new URL(p.url);
        url.username = url.password = '';
        return `mqtt ${url.toString()}`;
      } catch {
        return 'mqtt';
      }
    default:
      return p.type;
  }
}

/** Who the admin API serves, for the start-up line. */
function adminMode(config: LoadedConfig['config']): string {
  if (!config.downlink.enabled || !config.admin.enabled) return 'off';
  const a = config.admin;
  const token = Boolean(a.token || a.tokenFile);
  const sigv4 = Boolean(a.sigv4.accessKeyId);
  if (token && sigv4) return 'bearer token or SigV4';
  if (token) return 'bearer token';
  if (sigv4) return 'SigV4';
  return 'loopback clients only (no credentials configured)';
}

export async function startGateway(
  loaded: LoadedConfig,
  overrides: GatewayOverrides = {},
): Promise<RunningGateway> {
  const { config } = loaded;
  preflight(loaded, { devices: !overrides.registry, publisher: !overrides.publisher });
  const log = overrides.log ?? createLogger(config.log.level);
  const metrics = createMetricsRegistry();
  const caps = new CapReporter(metrics, log);
  const closers: (() => Promise<void> | void)[] = [() => caps.close()];
  let closed: Promise<void> | undefined;
  const closeAll = () =>
    (closed ??= (async () => {
      for (const c of closers.reverse()) await c();
    })());
  try {
    for (const line of stateDeprecations(config)) log.warn(line);
    // One Redis connection for every shared store of this process (state.redis).
    const state = openSharedState(config.state, log, downlinksUseRedis(config.downlink));
    closers.push(() => state.close());
    const registry = overrides.registry ?? new FileRegistry(config.devices.file, log, config.devices.watch);
    closers.push(() => registry.close());
    let decoder = overrides.decoder;
    let downlinkCodecs = overrides.downlinkCodecs;
    if (!decoder) {
      const codecs = new CodecRegistry({
        config: config.codecs,
        baseDir: loaded.baseDir,
        metrics,
        log,
        caps,
      });
      closers.push(() => codecs.close());
      // Codecs the devices use are created now and again after each registry reload, so decoding picks
      // them synchronously; a registry that cannot list its devices gets them created on first use.
      const follow = codecs.follow(registry);
      closers.push(() => follow.stop());
      await follow.ready;
      decoder = codecs;
      downlinkCodecs ??= codecs; // it encodes downlinks with the devices' codecs too
    }
    const publisher =
      overrides.publisher ?? (await createPublisher(config.publisher, { log, metrics, caps }));
    let publisherClosed: Promise<void> | undefined;
    const closePublisher = () => (publisherClosed ??= publisher.close());
    closers.push(closePublisher);
    const downloads = new Downloads(config.downloads, log, (n) => caps.hit('download_cache_bytes', n));
    gaugeFrom(
      metrics,
      'cellgate_download_cache_bytes',
      'Bytes of download files cached in memory.',
      () => downloads.cacheBytes,
    );
    // The dedup store state.store names: in Redis over the shared connection, or in memory within the caps.
    const dedup: DedupStore =
      state.store === 'redis' && state.redis
        ? new RedisDedupStore(state.redis, log)
        : new MemoryDedupStore({
            maxEntries: config.coap.dedup.maxEntries,
            maxBytes: config.coap.dedup.maxBytes,
            onCap: (n) => caps.hit('dedup_store', n),
          });
    closers.push(() => dedup.close());
    counterFrom(
      metrics,
      'cellgate_dedup_store_operations_total',
      'Dedup store operations by outcome: block-wise uplinks remembered, orphaned last blocks recalled or missed, store failures.',
      () => dedup.outcomes,
      'outcome',
    );
    const downlinks = createDownlinks(
      config.downlink,
      { log, metrics, caps, codecs: downlinkCodecs },
      state.redis,
    );
    if (downlinks) closers.push(() => downlinks.close());
    const gateway = new Gateway({
      onLogCap: () => caps.hit('log_limit_keys'),
      registry,
      decoder,
      publisher,
      downloads,
      topic: compileTopic(config.publisher.topic),
      identity: config.coap.identity,
      dedup,
      exchangeLifetimeMs: config.coap.dedup.lifetimeMs ?? exchangeLifetimeMs(config.coap.transmission),
      log,
      metrics,
      // Downlinks ride on uplink responses, and devices pull theirs with GET /shadow.
      responder: downlinks,
      routes: downlinks?.routes((ex) => identify(ex, registry, config.coap.identity)),
    });
    await downlinks?.ready(config.state.redis.commandTimeoutMs);
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
      const socket = await bindUdp({
        bind: coap.bind,
        port: coap.port,
        bufferBytes: coap.socketBufferBytes,
      }).catch((err: unknown) => {
        const at = { bind: coap.bind, port: coap.port, bindKey: 'coap.bind', portKey: 'coap.port' };
        throw listenError(err, { protocol: 'UDP', ...at });
      });
      nosec = new NoSecListener(socket, endpoint, {
        maxPeers: coap.peers.maxEntries,
        idleMs: 60_000,
        onCap: (n) => caps.hit('nosec_peers', n),
        onSocketError: socketErrorLog(log, 'nosec'),
      });
      const listener = nosec;
      closers.push(() => listener.close());
    }

    const observe = state.redis ? registerStoreMetrics(metrics, state) : undefined;
    let dtls: DtlsListener | undefined;
    if (config.dtls.enabled) {
      // With state.store: redis, DTLS sessions are shared by the replicas through Redis.
      const sessionStore =
        state.store === 'redis' && state.redis && state.keyring
          ? new RedisSessionStore(state.redis, state.keyring, {
              idleTimeoutMs: config.dtls.idleTimeoutMs,
              timeoutMs: config.state.redis.commandTimeoutMs,
              observe,
            })
          : undefined;
      const listener = await createDtlsListener({
        bind: coap.bind,
        port: coap.dtlsPort,
        socketBufferBytes: coap.socketBufferBytes,
        config: config.dtls,
        ...dtlsLookups(registry),
        log,
        metrics,
        caps,
        onApplicationData: (data, peer) => endpoint.receive(data, peer),
        onSessionClosed: (peer) => endpoint.dropPeer(peer),
        sessionStore,
      }).catch((err: unknown) => {
        const at = { bind: coap.bind, port: coap.dtlsPort, bindKey: 'coap.bind', portKey: 'coap.dtlsPort' };
        throw listenError(err, { protocol: 'UDP', ...at });
      });
      dtls = listener;
      closers.push(() => listener.close());
      // Hear other replicas' take-overs before taking traffic (bounded: a store that is down is retried).
      if (sessionStore) await waitUpTo(sessionStore.subscribed, config.state.redis.commandTimeoutMs);
      // A device removed or given a new key loses its session.
      // With shared sessions, one made with the device's current key stays (a replica that reloads the device
      // file late must not end the session the device already made with its new key elsewhere).
      closers.push(
        registry.onChange((c) =>
          c.removed.forEach((id) =>
            listener.server.endSessionsOf(id, credentialTag(registry.get(id)?.psk?.key)),
          ),
        ),
      );
    }

    const raw = await startRawUdp({
      config,
      baseDir: loaded.baseDir,
      registry,
      decoder,
      publisher,
      topic: compileTopic(config.publisher.topic),
      downlinks,
      // Frame counters, recent uplinks and the IP → SIM table are shared with `state.store: redis`.
      redis: config.state.store === 'redis' ? state.redis : undefined,
      log,
      metrics,
      caps,
    });
    closers.push(() => raw.close());

    let draining = false;
    const notReady = (): string[] => {
      const reasons: string[] = [];
      if (draining) reasons.push('draining');
      if (!publisher.ready()) reasons.push('publisher not accepting');
      reasons.push(...state.notReady());
      return reasons;
    };
    const details = () => ({ store: state.report() });
    const nosecListener = nosec;
    const dtlsListener = dtls;
    registerGatewayMetrics(metrics, {
      notReady,
      draining: () => draining,
      devices: () => registry.size,
      deviceFile:
        registry instanceof FileRegistry
          ? { reloads: () => registry.reloadCounts, loadedAt: () => registry.loadedAt }
          : undefined,
      nosec: nosecListener && {
        socketErrors: () => nosecListener.socketErrors,
        peers: () => nosecListener.peerCount,
        portZero: () => nosecListener.portZero,
      },
      dtlsSocketErrors: dtlsListener && (() => dtlsListener.socketErrors),
    });
    const http = new HttpSidePort(metrics, { notReady, details }, log);
    if (downlinks) mountAdminApi(http, downlinks, config, log, registry);
    if (raw.counters && config.admin.enabled)
      mountFrameCounterAdmin(http, new AdminAuth(config.admin), raw.counters, registry, log);
    const httpPort = await http.listen(config.http.bind, config.http.port).catch((err: unknown) => {
      const at = {
        bind: config.http.bind,
        port: config.http.port,
        bindKey: 'http.bind',
        portKey: 'http.port',
      };
      throw listenError(err, { protocol: 'TCP', ...at });
    });
    closers.push(() => http.close());

    log.info(
      {
        version: packageVersion(),
        config: loaded.file ?? '(defaults)',
        coap: nosec ? `${coap.bind}:${nosec.port}` : 'off',
        dtls: dtls ? `${coap.bind}:${dtls.port}` : 'off',
        // Raw UDP and RADIUS are named only when they run (both are off unless configured).
        udp: raw.ports.udp ? `${config.udp.bind}:${raw.ports.udp}` : undefined,
        udpDtls: raw.ports.udpDtls ? `${config.udp.bind}:${raw.ports.udpDtls}` : undefined,
        radius: raw.ports.radius ? `${config.radius.bind}:${raw.ports.radius}` : undefined,
        http: `${config.http.bind}:${httpPort}`,
        devices: registry.size,
        uplinks: overrides.publisher ? publisher.type : uplinkDestination(config.publisher),
        downlinks: config.downlink.enabled
          ? `shadow ${config.downlink.shadow.source}, commands ${config.downlink.commands.store}`
          : 'off',
        admin: adminMode(config),
      },
      'cellgate listening',
    );
    return {
      config,
      ports: { coap: nosec?.port, dtls: dtls?.port, http: httpPort, ...raw.ports },
      endpoint,
      gateway,
      raw,
      publisher,
      registry,
      downlinks,
      metrics,
      http,
      log,
      notReady,
      shutdown: (signal) =>
        drainAndClose(
          {
            log,
            markDraining: () => (draining = true),
            refuseNew: (maxAge) => endpoint.drain(maxAge),
            whenIdle: (ms) => endpoint.whenIdle(ms, () => (publisher.pending?.() ?? 0) === 0),
            pending: () => ({
              inFlight: endpoint.inFlight,
              unacknowledged: endpoint.stats.outgoing,
              undelivered: publisher.pending?.() ?? 0,
            }),
            closePublisher,
            close: closeAll,
          },
          config.shutdown,
          signal,
        ),
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

function waitUpTo(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
