/**
 * The `redis` dedup store: shared by every replica. One string per record, `<prefix>{<deviceId>}:up:<key>`,
 * holding the message id, expiring with PX: one SET to remember, one GET to recall.
 */
import type { Logger } from '../ops/logger.js';
import type { DedupStore } from './dedup-store.js';
import type { RedisConnection } from './redis.js';

const ERROR_LOG_INTERVAL_MS = 30_000;

export class RedisDedupStore implements DedupStore {
  readonly kind = 'redis';
  readonly outcomes = new Map<string, number>();
  private lastErrorLog = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly log: Logger,
  ) {}

  private key(deviceId: string, key: string): string {
    return `${this.redis.prefix}{${deviceId}}:up:${key}`;
  }

  private count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  private failed(err: Error, op: string): void {
    this.count('failed');
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.log.warn({ err: err.message, op }, 'dedup store unavailable');
  }

  /** Redis expires the record: `_now` is not needed. */
  async remember(
    deviceId: string,
    key: string,
    messageId: string,
    ttlMs: number,
    _now?: number,
  ): Promise<void> {
    try {
      await this.redis.client.set(this.key(deviceId, key), messageId, 'PX', Math.max(1, Math.round(ttlMs)));
      this.count('remembered');
    } catch (err) {
      this.failed(err as Error, 'remember');
    }
  }

  async recall(deviceId: string, key: string, _now?: number): Promise<string | undefined> {
    try {
      const id = await this.redis.client.get(this.key(deviceId, key));
      this.count(id === null ? 'missed' : 'recalled');
      return id ?? undefined;
    } catch (err) {
      this.failed(err as Error, 'recall');
      return undefined;
    }
  }

  /** The connection belongs to the process: its owner closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
