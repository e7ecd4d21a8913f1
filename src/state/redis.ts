/**
 * The Redis connection shared by the Redis-backed stores, and a change feed over Redis pub/sub so every
 * replica hears at once that a thing's shared state changed (and drops what it cached about it).
 */
import { Redis } from 'ioredis';
import type { Logger } from '../ops/logger.js';

export interface RedisOptions {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
}

const ERROR_LOG_INTERVAL_MS = 30_000;

export class RedisConnection {
  readonly client: Redis;
  readonly prefix: string;
  private subscriber: Redis | undefined;
  /** Settles once the change feed's subscription is in place (at once when nothing listens). */
  subscribed: Promise<void> = Promise.resolve();
  private readonly listeners: ((thing: string) => void)[] = [];
  private readonly channel: string;
  private lastErrorLog = 0;

  constructor(
    private readonly opts: RedisOptions,
    private readonly log: Logger,
  ) {
    this.prefix = opts.keyPrefix;
    this.channel = `${opts.keyPrefix}downlink:changed`;
    this.client = new Redis(opts.url, {
      commandTimeout: opts.commandTimeoutMs,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: true,
    });
    this.client.on('error', (err: Error) => this.logError(err));
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
    this.listeners.push(listener);
    if (this.subscriber) return;
    const sub = this.client.duplicate();
    this.subscriber = sub;
    sub.on('error', (err: Error) => this.logError(err));
    sub.on('message', (_channel: string, thing: string) => {
      for (const l of this.listeners) l(thing);
    });
    this.subscribed = sub.subscribe(this.channel).then(
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
