/**
 * Starts the raw UDP side of a gateway from `udp` and `radius`: the state stores (frame counters, recent
 * uplinks, the IP → SIM table; in memory or in the shared Redis), the RADIUS accounting listener, the raw
 * endpoint and its NoSec and DTLS listeners.
 */
import { listenError } from '../config/errors.js';
import type { Config } from '../config/schema.js';
import type { UplinkDecoder } from '../codecs/codec.js';
import { dtlsLookups } from '../devices/dtls-lookups.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { createDtlsListener, type DtlsListener } from '../dtls/server/listener.js';
import type { Logger } from '../ops/logger.js';
import { gaugeFrom, readEach, type CapReporter, type MetricsRegistry } from '../ops/metrics.js';
import { socketErrorLog } from '../ops/socket-errors.js';
import type { Publisher } from '../publish/publisher.js';
import type { TopicRenderer } from '../publish/topic.js';
import { RadiusListener } from '../radius/listener.js';
import { MemoryFrameCounters, type FrameCounterStore } from '../state/frame-counters.js';
import { MemoryRecentUplinks, type RecentUplinkStore } from '../state/recent-uplinks.js';
import { RedisFrameCounters } from '../state/redis-frame-counters.js';
import { RedisRecentUplinks } from '../state/redis-recent-uplinks.js';
import { RedisSimTable } from '../state/redis-sim-table.js';
import { MemorySimTable, type SimTable } from '../state/sim-table.js';
import type { RedisConnection } from '../state/redis.js';
import { bindUdp } from '../transport/udp.js';
import { listenPlain, RawUdpEndpoint } from '../udp/endpoint.js';
import { RawUplinks, type RawDownlinkSource } from './raw-uplinks.js';

export interface RawUdpDeps {
  config: Config;
  baseDir: string;
  registry: DeviceRegistry;
  decoder: UplinkDecoder;
  publisher: Publisher;
  topic: TopicRenderer;
  downlinks?: RawDownlinkSource;
  /** The shared Redis connection, when state lives there (`state.store: redis`). */
  redis?: RedisConnection;
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
}

export interface RawUdp {
  readonly ports: { udp?: number; udpDtls?: number; radius?: number };
  readonly endpoint?: RawUdpEndpoint;
  readonly uplinks?: RawUplinks;
  /** The frame counters (for the admin API), when a raw listener runs. */
  readonly counters?: FrameCounterStore;
  readonly sims?: SimTable;
  readonly dtls?: DtlsListener;
  close(): Promise<void>;
}

const COUNT_MS = 15_000;

/** A bind failure said in terms of the keys to change (a port in use, a bind address not of this machine). */
function bindError(err: unknown, bind: string, port: number, section: string, portKey = 'port'): unknown {
  return listenError(err, {
    protocol: 'UDP',
    bind,
    port,
    bindKey: `${section}.bind`,
    portKey: `${section}.${portKey}`,
  });
}

export async function startRawUdp(deps: RawUdpDeps): Promise<RawUdp> {
  const { config, log, metrics, caps, redis } = deps;
  const udp = config.udp;
  const radius = config.radius;
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  const tables: Record<string, () => number> = {};
  const capsOf: Record<string, number> = {};
  try {
    let sims: SimTable | undefined;
    let radiusListener: RadiusListener | undefined;
    // The table is fed here (radius.port), or by the replicas that take accounting when it is shared.
    if (radius.port !== 0 || (redis !== undefined && udp.identity.includes('radius'))) {
      const cap = (n: number) => caps.hit('radius_sessions', n);
      if (redis) {
        const table = new RedisSimTable(redis.client, redis.prefix, radius.sessions.maxEntries, cap);
        let count = 0;
        const refresh = () =>
          void table.count().then(
            (n) => (count = n),
            () => undefined,
          );
        refresh();
        const timer = setInterval(refresh, COUNT_MS);
        timer.unref();
        closers.push(() => clearInterval(timer));
        tables.radius_sessions = () => count;
        sims = table;
      } else {
        const table = new MemorySimTable(radius.sessions.maxEntries, cap);
        tables.radius_sessions = () => table.size;
        sims = table;
      }
      capsOf.radius_sessions = radius.sessions.maxEntries;
      const table = sims;
      closers.push(() => table.close());
    }
    if (radius.port !== 0) {
      radiusListener = await RadiusListener.start({
        config: radius,
        baseDir: deps.baseDir,
        table: sims as SimTable,
        log,
        metrics,
        socketBufferBytes: config.coap.socketBufferBytes,
      }).catch((err: unknown) => {
        throw bindError(err, radius.bind, radius.port, 'radius');
      });
      const l = radiusListener;
      closers.push(() => l.close());
    }

    const rawOn = udp.port !== 0 || udp.dtlsPort !== 0;
    let endpoint: RawUdpEndpoint | undefined;
    let uplinks: RawUplinks | undefined;
    let counters: FrameCounterStore | undefined;
    let udpPort: number | undefined;
    let dtls: DtlsListener | undefined;
    if (rawOn) {
      let recent: RecentUplinkStore;
      if (redis) {
        counters = new RedisFrameCounters(redis.client, redis.prefix);
        recent = new RedisRecentUplinks(redis.client, redis.prefix);
      } else {
        const c = new MemoryFrameCounters(udp.counter.maxEntries, () => caps.hit('udp_frame_counters'));
        const r = new MemoryRecentUplinks(udp.dedup.maxEntries, (n) => caps.hit('udp_recent_uplinks', n));
        tables.udp_frame_counters = () => c.size;
        tables.udp_recent_uplinks = () => r.size;
        capsOf.udp_frame_counters = udp.counter.maxEntries;
        capsOf.udp_recent_uplinks = udp.dedup.maxEntries;
        counters = c;
        recent = r;
      }
      const counterStore = counters;
      closers.push(() => counterStore.close());
      closers.push(() => recent.close());
      // Re-provisioning resets a device's counter: removed from the device file, or new credentials.
      closers.push(
        deps.registry.onChange((change) => {
          for (const id of change.removed) void counterStore.reset(id).catch(() => undefined);
        }),
      );
      const handler = new RawUplinks({
        config: udp,
        registry: deps.registry,
        decoder: deps.decoder,
        publisher: deps.publisher,
        topic: deps.topic,
        counters,
        recent,
        sims,
        downlinks: deps.downlinks,
        log,
        caps,
      });
      uplinks = handler;
      tables.udp_replies = () => handler.lastReplies.size;
      tables.udp_downlink_offers = () => handler.offers.size;
      capsOf.udp_replies = udp.reply.maxCached;
      capsOf.udp_downlink_offers = udp.reply.maxCached;
      const ep = new RawUdpEndpoint(handler, udp.maxDatagramBytes, metrics);
      endpoint = ep;
      if (udp.port !== 0) {
        const socket = await bindUdp({
          bind: udp.bind,
          port: udp.port,
          bufferBytes: config.coap.socketBufferBytes,
        }).catch((err: unknown) => {
          throw bindError(err, udp.bind, udp.port, 'udp', 'port');
        });
        udpPort = socket.address().port;
        closers.push(listenPlain(socket, ep, socketErrorLog(log, 'udp')));
      }
      if (udp.dtlsPort !== 0) {
        const listener = await createDtlsListener({
          bind: udp.bind,
          port: udp.dtlsPort,
          socketBufferBytes: config.coap.socketBufferBytes,
          config: config.dtls,
          ...dtlsLookups(deps.registry),
          log,
          metrics,
          caps,
          onApplicationData: (data, peer) => ep.receiveSecure(data, peer),
        }).catch((err: unknown) => {
          throw bindError(err, udp.bind, udp.dtlsPort, 'udp', 'dtlsPort');
        });
        dtls = listener;
        closers.push(() => listener.close());
        closers.push(
          deps.registry.onChange((c) => c.removed.forEach((id) => listener.server.endSessionsOf(id))),
        );
      }
    }
    if (Object.keys(tables).length) {
      gaugeFrom(
        metrics,
        'cellgate_udp_table_entries',
        'Entries of the raw UDP and RADIUS tables (memory stores; radius_sessions also in Redis).',
        readEach(tables),
        'table',
      );
      gaugeFrom(
        metrics,
        'cellgate_udp_table_capacity',
        'Caps of the raw UDP and RADIUS tables (udp.counter.maxEntries, udp.dedup.maxEntries, udp.reply.maxCached, radius.sessions.maxEntries).',
        () => capsOf,
        'table',
      );
    }
    return {
      ports: { udp: udpPort, udpDtls: dtls?.port, radius: radiusListener?.port },
      endpoint,
      uplinks,
      counters,
      sims,
      dtls,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
