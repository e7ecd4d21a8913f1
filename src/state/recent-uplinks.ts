/**
 * Recently seen uplinks of devices without a frame counter, by content hash: the same bytes from the same
 * device within a short window are a duplicate. In memory (generational: two windows at most, capped in
 * entries) or in Redis (`RedisRecentUplinks`, one key per uplink with the window as its expiry).
 */
export interface RecentUplinkStore {
  /** Records the uplink; true when it was already recorded within the window (a duplicate). */
  seen(deviceId: string, hash: string, windowMs: number): boolean | Promise<boolean>;
  /** Forgets an uplink that could not be published, so its retransmission is taken. */
  forget(deviceId: string, hash: string): void | Promise<void>;
  readonly size?: number;
  close(): Promise<void>;
}

export class MemoryRecentUplinks implements RecentUplinkStore {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private rotatedAt = Date.now();

  constructor(
    private readonly maxEntries: number,
    private readonly onCap: (dropped: number) => void,
  ) {}

  get size(): number {
    return this.current.size + this.previous.size;
  }

  seen(deviceId: string, hash: string, windowMs: number): boolean {
    const now = Date.now();
    if (now - this.rotatedAt >= windowMs) this.rotate(now);
    const key = `${deviceId}\0${hash}`;
    const at = this.current.get(key) ?? this.previous.get(key);
    if (at !== undefined && now - at < windowMs) return true;
    if (this.current.size >= this.maxEntries / 2) {
      this.onCap(this.previous.size);
      this.rotate(now);
    }
    this.current.set(key, now);
    return false;
  }

  forget(deviceId: string, hash: string): void {
    const key = `${deviceId}\0${hash}`;
    this.current.delete(key);
    this.previous.delete(key);
  }

  private rotate(now: number): void {
    this.previous = this.current;
    this.current = new Map();
    this.rotatedAt = now;
  }

  close(): Promise<void> {
    this.current.clear();
    this.previous.clear();
    return Promise.resolve();
  }
}
