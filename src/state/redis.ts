/**
 * The one Redis connection every shared store of a process uses (downlink shadows and command queues, DTLS
 * sessions, deduplication), made from `state.redis`: standalone or Redis Cluster, redis:// or rediss://
 * (TLS), the password from the URL or a file, a time-out on every command, reconnection with a bounded
 * back-off. Also a change feed over Redis pub/sub, so every replica hears at once that a thing's shared state
 * changed (and drops what it cached about it).
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions as IoRedisOptions } from 'ioredis';
import { ConfigError } from '../config/errors.js';
import type { Logger } from '../ops/logger.js';

export interface RedisOptions {
  /** redis:// or rediss:// URL (`state.redis.url`). */
  url: string;
  /** Prefix of every key and channel (`state.redis.keyPrefix`). */
  keyPrefix: string;
  commandTimeoutMs: number;
  connectTimeoutMs?: number;
  /** File holding the password; overrides a password in the URL. */
  passwordFile?: string;
  /** Redis Cluster: discover the nodes from `url`, route by key slot. */
  cluster?: boolean;
  /** PEM CA for rediss:// with a private CA. */
  tlsCaFile?: string;
}

/** What the stores call: the commands of a standalone client, which a cluster client has as well. */
export type RedisClient = Redis | Cluster;

const ERROR_LOG_INTERVAL_MS = 30_000;
const MAX_BACKOFF_MS = 2000;

/** Reconnect after 50 ms, 100 ms, … up to 2 s between attempts, for ever. */
function backoff(times: number): number {
  return Math.min(times * 50, MAX_BACKOFF_MS);
}

/** Connection settings for ioredis from the URL and the options (the password file read now). */
export function redisClientOptions(opts: RedisOptions): {
  host: string;
  port: number;
  options: IoRedisOptions;
} {
  let u: URL;
  try {
    u = new URL(opts.url);
  } catch {
    throw new ConfigError(`state.redis.url is not a URL: ${redactUrl(opts.url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new ConfigError(`state.redis.url must start with redis:// or rediss://, not ${u.protocol}//`);
  let password = u.password ? decodeURIComponent(u.password) : undefined;
  if (opts.passwordFile) {
    try {
      password = readFileSync(opts.passwordFile, 'utf8').replace(/[\r\n]+$/, '');
    } catch (err) {
      throw new ConfigError(`cannot read state.redis.passwordFile: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  const options: IoRedisOptions = {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password,
    db: opts.cluster ? undefined : db,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy: backoff,
    // A primary that became a replica in a fail-over answers READONLY: reconnect and send again.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
  if (u.protocol === 'rediss:') {
    options.tls = { servername: u.hostname };
    if (opts.tlsCaFile) {
      try {
        options.tls.ca = readFileSync(opts.tlsCaFile);
      } catch (err) {
        throw new ConfigError(`cannot read state.redis.tlsCaFile: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379, options };
}

/** A client for the settings: `Redis.Cluster` when `cluster` is set, else a standalone client. */
export function createRedisClient(opts: RedisOptions): RedisClient {
  const { host, port, options } = redisClientOptions(opts);
  if (!opts.cluster) return new Redis({ ...options, host, port });
  const { retryStrategy: _r, ...redisOptions } = options;
  const cluster: ClusterOptions = {
    redisOptions,
    clusterRetryStrategy: backoff,
    enableAutoPipelining: true,
    slotsRefreshTimeout: opts.connectTimeoutMs ?? 5000,
    // ElastiCache with in-transit encryption: the certificate names the configuration endpoint, while
    // CLUSTER SLOTS answers with node addresses; connect to those names as given.
    dnsLookup: options.tls ? (address, done) => done(null, address) : undefined,
  };
  return new Cluster([{ host, port }], cluster);
}

export class RedisConnection {
  readonly client: RedisClient;
  readonly prefix: string;
  readonly cluster: boolean;
  private subscriber: RedisClient | undefined;
  /** Settles once the change feed's subscription is in place (at once when nothing listens). */
  subscribed: Promise<void> = Promise.resolve();
  private readonly channels = new Map<string, ((message: string) => void)[]>();
  private readonly channel: string;
  private lastErrorLog = 0;
  /** Whether the client has been connected at least once since start. */
  private everReady = false;

  constructor(
    private readonly opts: RedisOptions,
    private readonly log: Logger,
  ) {
    this.prefix = opts.keyPrefix;
    this.cluster = opts.cluster === true;
    this.channel = `${opts.keyPrefix}downlink:changed`;
    this.client = createRedisClient(opts);
    this.client.on('error', (err: Error) => this.logError(err));
    this.client.on('ready', () => {
      if (this.everReady) this.log.info({ url: redactUrl(opts.url) }, 'redis connection restored');
      this.everReady = true;
    });
  }

  /** Connected and accepting commands now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** Connected at least once since start. */
  get reached(): boolean {
    return this.everReady;
  }

  /** Settles when the client is ready, or rejects after `ms`. */
  waitReady(ms: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        reject(new Error(`Redis not reachable within ${ms} ms (${redactUrl(this.opts.url)})`));
      }, ms);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.client.once('ready', onReady);
    });
  }

  private logError(err: Error): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.log.warn({ err: err.message, url: redactUrl(this.opts.url) }, 'redis connection error');
  }

  /** Tells every replica (this one included) that a thing's state changed. */
  publishChange(thing: string): void {
    this.client.publish(this.channel, thing).catch((err: Error) => this.logError(err));
  }

  /** Calls `listener(thing)` for every change any replica publishes. */
  onChange(listener: (thing: string) => void): void {
    const listening = this.listen(this.channel, listener);
    const before = this.subscribed;
    this.subscribed = before.then(() => listening);
  }

  /**
   * Calls `listener(message)` for every message on `channel` (a key-prefixed name), through the one
   * subscriber connection of this process; settles once subscribed (errors are logged, and the client
   * subscribes again after a reconnection).
   */
  listen(channel: string, listener: (message: string) => void): Promise<void> {
    let listeners = this.channels.get(channel);
    if (listeners) {
      listeners.push(listener);
      return Promise.resolve();
    }
    listeners = [listener];
    this.channels.set(channel, listeners);
    if (!this.subscriber) {
      const c = this.client;
      // A standalone subscriber subscribes again itself after a reconnection: ioredis' own re-subscription
      // leaves a failure (the connection dropping again) as an unhandled rejection, which ends the process.
      // The cluster client's subscriber handles its own.
      const sub = c instanceof Cluster ? c.duplicate() : c.duplicate({ autoResubscribe: false });
      this.subscriber = sub;
      sub.on('error', (err: Error) => this.logError(err));
      if (!(sub instanceof Cluster)) {
        let connected = false;
        sub.on('ready', () => {
          if (connected && this.channels.size)
            sub.subscribe(...this.channels.keys()).catch((err: Error) => this.logError(err));
          connected = true;
        });
      }
      sub.on('message', (ch: string, message: string) => {
        for (const l of this.channels.get(ch) ?? []) l(message);
      });
    }
    return this.subscriber.subscribe(channel).then(
      () => undefined,
      (err: Error) => this.logError(err),
    );
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable url)';
  }
}
