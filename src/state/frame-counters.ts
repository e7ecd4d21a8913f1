/**
 * The last frame counter accepted per raw UDP device, and the hash of that uplink (so a retransmission of it can
 * be told from a replay that reuses its counter). In memory for one gateway; in Redis (`RedisFrameCounters`) when
 * replicas and restarts must agree.
 *
 * `claim` judges a counter and, when it is new, records it in the same step, so two replicas cannot both
 * accept the same counter. An uplink that then fails to publish gives its claim back (`release`), so the
 * device's retransmission is taken.
 */
import { judgeCounter, type CounterRule, type CounterVerdict } from '../udp/counter.js';

export interface CounterClaim {
  /** `full`: the memory store is at its cap and does not know the device. */
  verdict: CounterVerdict | 'full';
  /** What the store held before a `new` claim, as the store knows it (for `release`); undefined: nothing. */
  previous?: unknown;
}

export interface FrameCounterStore {
  claim(
    deviceId: string,
    counter: number,
    hash: string,
    rule: CounterRule,
  ): CounterClaim | Promise<CounterClaim>;
  /** Gives back a `new` claim (publish failed): restores `previous` if the store still holds this claim. */
  release(deviceId: string, counter: number, hash: string, previous: unknown): void | Promise<void>;
  /** The last accepted counter, if any. */
  get(deviceId: string): Promise<number | undefined>;
  /** Forgets the device's counter (re-provisioning, admin reset): its next counter is taken, whatever it is. */
  reset(deviceId: string): Promise<boolean>;
  readonly size?: number;
  close(): Promise<void>;
}

/** `<counter>:<hash>`: how both stores hold a device's last uplink. */
export function counterRecord(counter: number, hash: string): string {
  return `${counter}:${hash}`;
}

interface LastUplink {
  readonly counter: number;
  readonly hash: string;
}

export class MemoryFrameCounters implements FrameCounterStore {
  private readonly last = new Map<string, LastUplink>();

  constructor(
    private readonly maxEntries: number,
    private readonly onCap: () => void,
  ) {}

  get size(): number {
    return this.last.size;
  }

  claim(deviceId: string, counter: number, hash: string, rule: CounterRule): CounterClaim {
    const stored = this.last.get(deviceId);
    if (stored === undefined) {
      if (this.last.size >= this.maxEntries) {
        this.onCap();
        return { verdict: 'full' };
      }
      this.last.set(deviceId, { counter, hash });
      return { verdict: 'new' };
    }
    let verdict = judgeCounter(stored.counter, counter, rule);
    if (verdict === 'new') this.last.set(deviceId, { counter, hash });
    else if (verdict === 'duplicate' && stored.hash !== hash) verdict = 'replay';
    return { verdict, previous: stored };
  }

  release(deviceId: string, counter: number, hash: string, previous: unknown): void {
    const now = this.last.get(deviceId);
    if (now === undefined || now.counter !== counter || now.hash !== hash) return;
    if (previous === undefined) this.last.delete(deviceId);
    else this.last.set(deviceId, previous as LastUplink);
  }

  get(deviceId: string): Promise<number | undefined> {
    return Promise.resolve(this.last.get(deviceId)?.counter);
  }

  reset(deviceId: string): Promise<boolean> {
    return Promise.resolve(this.last.delete(deviceId));
  }

  close(): Promise<void> {
    this.last.clear();
    return Promise.resolve();
  }
}
