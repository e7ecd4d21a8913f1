/**
 * Per-key rate limiting for log lines about devices: at most one line per key (a device id, a claimed
 * identity, an address) per interval, the line saying how many it held back. The table of keys is capped;
 * past the cap the key that logged longest ago is forgotten (that key may then log again early).
 */
import { BoundedMap } from '../collections/bounded-map.js';

export class KeyedLogLimit {
  /** Key → time of its last line and lines held back since; oldest line first. */
  private readonly keys: BoundedMap<string, { at: number; held: number }>;

  constructor(
    private readonly intervalMs = 60_000,
    maxKeys = 10_000,
    onCap?: () => void,
  ) {
    this.keys = new BoundedMap({ maxEntries: maxKeys, onCap: () => onCap?.() });
  }

  /** Whether a line for `key` may be written now: undefined if not, else the lines held back before it. */
  take(key: string, now = Date.now()): number | undefined {
    const e = this.keys.get(key);
    if (e !== undefined && now - e.at < this.intervalMs) {
      e.held++;
      return undefined;
    }
    const held = e?.held ?? 0;
    this.keys.set(key, { at: now, held: 0 });
    return held;
  }

  get size(): number {
    return this.keys.size;
  }
}
