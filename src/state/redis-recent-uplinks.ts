/** Recently seen uplinks in Redis: `<prefix>udp:seen:{<deviceId>}:<hash>`, set only if absent, expiring after the window. */
import type { RedisClient } from './redis.js';
import type { RecentUplinkStore } from './recent-uplinks.js';

export class RedisRecentUplinks implements RecentUplinkStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(deviceId: string, hash: string): string {
    return `${this.prefix}udp:seen:{${deviceId}}:${hash}`;
  }

  async seen(deviceId: string, hash: string, windowMs: number): Promise<boolean> {
    if (windowMs <= 0) return false;
    return (await this.redis.set(this.key(deviceId, hash), '1', 'PX', windowMs, 'NX')) === null;
  }

  async forget(deviceId: string, hash: string): Promise<void> {
    await this.redis.del(this.key(deviceId, hash));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
