/**
 * What `state:` gives a process: its one Redis connection (when any store is in Redis) and, with
 * `state.store: redis`, the keyring that seals secrets kept there. The gateway opens it first and closes it
 * last; the stores built on it never open connections of their own.
 */
import type { StateConfig } from '../config/state.js';
import type { Logger } from '../ops/logger.js';
import { RedisConnection } from './redis.js';
import { Keyring } from './sealing.js';

export interface SharedState {
  readonly store: StateConfig['store'];
  /** The shared connection: with `state.store: redis`, or when a downlink store alone is in Redis. */
  readonly redis?: RedisConnection;
  /** Seals session secrets (with `state.store: redis`). */
  readonly keyring?: Keyring;
  /**
   * Why traffic should wait: the Redis store not reached since start (a replica that never reached it
   * cannot take a session over). A later outage does not make the replica unready: sessions it holds keep
   * working, and every replica would go unready together.
   */
  notReady(): string[];
  /** What `/readyz` says about the store. */
  report(): { kind: 'memory' } | { kind: 'redis'; cluster: boolean; reachable: boolean };
  close(): Promise<void>;
}

/**
 * Reads the keyring (failing at once with a clear message when it is missing or malformed) and creates the
 * Redis connection; `needRedis` asks for it with the memory store too (downlink stores configured alone).
 */
export function openSharedState(config: StateConfig, log: Logger, needRedis = false): SharedState {
  const shared = config.store === 'redis';
  const keyring = shared ? Keyring.fromFile(config.encryptionKeyFile) : undefined;
  const redis = shared || needRedis ? new RedisConnection(config.redis, log) : undefined;
  if (keyring) log.info({ keys: keyring.ids, sealing: keyring.current }, 'state sealing keyring loaded');
  return {
    store: config.store,
    redis,
    keyring,
    notReady: () => (redis && !redis.reached ? ['state store not reached yet'] : []),
    report: () =>
      redis && shared
        ? { kind: 'redis', cluster: redis.cluster, reachable: redis.ready }
        : { kind: 'memory' },
    close: async () => {
      await redis?.close();
    },
  };
}
