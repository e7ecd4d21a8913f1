/** Builds the downlink layer from the `downlink` config section: shadow source, command store, cache. */
import type { AdminConfig } from '../config/admin.js';
import type { DownlinkConfig } from '../config/downlink.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { AdminAuth } from '../ops/admin-auth.js';
import type { HttpSidePort } from '../ops/http.js';
import type { Logger } from '../ops/logger.js';
import { gaugeFrom, readEach } from '../ops/metrics.js';
import type { CommandLimits, CommandStore } from '../state/command-store.js';
import { MemoryCommandStore } from '../state/memory-command-store.js';
import { RedisCommandStore } from '../state/redis-command-store.js';
import type { RedisConnection } from '../state/redis.js';
import { AdminApi } from './admin-api.js';
import { AwsIotShadowSource, awsIotShadowOptions } from './aws-iot-shadows.js';
import { Downlinks, type DownlinkDeps } from './downlinks.js';
import { MemoryShadowSource } from './memory-shadows.js';
import { RedisShadowSource } from './redis-shadows.js';
import type { ShadowSource } from './shadow-source.js';

export { Downlinks } from './downlinks.js';
export type { DownlinkCodecs } from './encoding.js';

/** Whether the downlink stores chosen in `config` keep their state in Redis. */
export function downlinksUseRedis(config: DownlinkConfig): boolean {
  return config.enabled && (config.shadow.source === 'redis' || config.commands.store === 'redis');
}

/**
 * The downlink layer, or undefined when `downlink.enabled` is false. `redis` is the process's shared
 * connection (`state.redis`), required when `downlinksUseRedis(config)`; its owner closes it.
 */
export function createDownlinks(
  config: DownlinkConfig,
  deps: DownlinkDeps,
  redis?: RedisConnection,
): Downlinks | undefined {
  if (!config.enabled) return undefined;
  const { caps, metrics } = deps;
  if (downlinksUseRedis(config) && !redis)
    throw new Error('the redis downlink stores need a Redis connection');
  const storeEntries: Record<string, () => number> = {};
  const storeBytes: Record<string, () => number> = {};

  let shadows: ShadowSource;
  const sh = config.shadow;
  if (sh.source === 'memory') {
    const m = new MemoryShadowSource({
      ...sh.memory,
      maxDocumentBytes: sh.maxDocumentBytes,
      onCap: (cap) => caps.hit(cap),
    });
    storeEntries.shadows = () => m.size;
    storeBytes.shadows = () => m.byteSize;
    shadows = m;
  } else if (sh.source === 'redis') {
    shadows = new RedisShadowSource(redis as RedisConnection, sh.name, sh.maxDocumentBytes);
  } else {
    shadows = new AwsIotShadowSource(awsIotShadowOptions(config, (cap, n) => caps.hit(cap, n)));
  }

  const cmd = config.commands;
  const limits: CommandLimits = {
    maxQueuedPerThing: cmd.maxQueuedPerThing,
    maxCommandBytes: cmd.maxCommandBytes,
    retentionMs: cmd.retentionSeconds * 1000,
  };
  let commands: CommandStore;
  if (cmd.store === 'memory') {
    const m = new MemoryCommandStore({ ...limits, ...cmd.memory, onCap: (cap) => caps.hit(cap) });
    storeEntries.commands = () => m.size;
    storeBytes.commands = () => m.byteSize;
    commands = m;
  } else {
    commands = new RedisCommandStore(redis as RedisConnection, limits);
  }
  if (Object.keys(storeEntries).length) {
    gaugeFrom(
      metrics,
      'cellgate_downlink_store_entries',
      'Things held by in-memory downlink stores.',
      readEach(storeEntries),
      'store',
    );
    gaugeFrom(
      metrics,
      'cellgate_downlink_store_bytes',
      'Bytes held by in-memory downlink stores.',
      readEach(storeBytes),
      'store',
    );
  }

  return new Downlinks(
    {
      // Memory stores tell the cache about every change as it happens: nothing to read again on a timer.
      ttlMs: sh.source === 'memory' && cmd.store === 'memory' ? Number.POSITIVE_INFINITY : config.cache.ttlMs,
      maxPerResponse: cmd.maxPerResponse,
      cache: config.cache,
      listening: redis ? () => redis.subscribed : undefined,
    },
    shadows,
    commands,
    deps,
  );
}

/** Whether a device of the registry has the thing; undefined when the registry cannot list its devices. */
function thingInUse(registry: DeviceRegistry, thing: string): boolean | undefined {
  const all = registry.values?.();
  if (!all) return undefined;
  for (const d of all) if (d.thing === thing) return true;
  return false;
}

/** Serves the admin API on the HTTP side port (unless `admin.enabled` is false). */
export function mountAdminApi(
  http: HttpSidePort,
  downlinks: Downlinks,
  config: { admin: AdminConfig; downlink: DownlinkConfig },
  log: Logger,
  registry?: DeviceRegistry,
): void {
  if (!config.admin.enabled) return;
  const c = config.downlink.commands;
  new AdminApi(
    downlinks,
    new AdminAuth(config.admin),
    {
      thingInUse: registry?.values && ((thing) => thingInUse(registry, thing)),
      shadowName: config.downlink.shadow.name,
      maxBodyBytes: config.admin.maxBodyBytes,
      commands: {
        defaultTtlSeconds: c.defaultTtlSeconds,
        maxTtlSeconds: c.maxTtlSeconds,
        maxCommandBytes: c.maxCommandBytes,
      },
    },
    log,
  ).mount(http);
}
