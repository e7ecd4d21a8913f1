/**
 * A deadline queue: entries kept in deadline order in a FIFO, and one timer for all of them, armed for the
 * head's deadline. When it fires, every entry whose deadline has passed is handed to `expire`, oldest first,
 * and the timer is armed again for the new head. Entries that no longer need their expiry (answered,
 * removed) are not taken out of the middle: `cancelled` says so when they reach the head, and they are dropped
 * there without a call (a tombstone costs one slot until then). A caller that cancels entries long before
 * their deadline says so with `noteCancelled`, and once tombstones make up most of the queue they are all
 * dropped in one pass, so they hold no memory for long.
 *
 * Callers whose entries all live the same time add them in deadline order, so `add` is a push; an entry due
 * earlier than the tail is placed by walking back from the tail. The timer is unref'd unless `keepAlive`
 * says otherwise, so waiting entries never keep the process up on their own. With a `resolutionMs` the timer
 * fires on a grid of that step, at the first step on or after the head's deadline, as a periodic sweep every
 * `resolutionMs` would, and deadlines within one step are swept in one go.
 */
import { Fifo } from './fifo.js';

/** What a deadline queue holds: anything with a deadline that does not change while it is queued. */
export interface Expiring {
  /** When the entry expires, on the queue's clock (ms). */
  readonly deadline: number;
}

export interface DeadlineQueueOptions<T> {
  /** Called for each entry whose deadline passed, oldest first, after it left the queue. */
  expire: (entry: T, now: number) => void;
  /** True for an entry that needs no expiry any more: dropped when it reaches the head, without a call. */
  cancelled?: (entry: T) => boolean;
  /** The clock deadlines are on (ms); `Date.now` unless given. */
  now?: () => number;
  /** The timer fires at multiples of this step (ms); 1 (the default): at the deadline itself. */
  resolutionMs?: number;
  /** Keep the process alive while entries wait (default: the timer is unref'd). */
  keepAlive?: boolean;
  /** false: no timer; the owner calls `sweep(now)` (its clock is its own, e.g. times its callers pass in). */
  timer?: boolean;
  /** Initial capacity of the FIFO. */
  initialCapacity?: number;
}

/** setTimeout takes at most this delay; a later deadline is reached in several waits. */
const MAX_DELAY_MS = 2 ** 31 - 1;

const never = (): boolean => false;

export class DeadlineQueue<T extends Expiring> {
  private readonly entries: Fifo<T>;
  private readonly expire: (entry: T, now: number) => void;
  private readonly cancelled: (entry: T) => boolean;
  private readonly now: () => number;
  private readonly resolutionMs: number;
  private readonly keepAlive: boolean;
  private readonly timed: boolean;
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer is due (ms on the queue's clock). */
  private timerAt = Number.POSITIVE_INFINITY;
  private sweeping = false;
  /** Cancellations noted and not yet dropped. */
  private tombstones = 0;
  private readonly live = (entry: T): boolean => !this.cancelled(entry);
  private readonly onTimer = (): void => {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.sweep();
  };

  constructor(options: DeadlineQueueOptions<T>) {
    this.entries = new Fifo<T>(options.initialCapacity);
    this.expire = options.expire;
    this.cancelled = options.cancelled ?? never;
    this.now = options.now ?? Date.now;
    this.resolutionMs = Math.max(1, options.resolutionMs ?? 1);
    this.keepAlive = options.keepAlive ?? false;
    this.timed = options.timer ?? true;
  }

  /** Entries held, cancelled ones not yet dropped included. */
  get length(): number {
    return this.entries.length;
  }

  /** True while the timer is armed. */
  get armed(): boolean {
    return this.timer !== null;
  }

  /** Queues `entry` in deadline order (after entries with the same deadline). */
  add(entry: T): void {
    const entries = this.entries;
    const last = entries.at(entries.length - 1);
    if (last === undefined || last.deadline <= entry.deadline) entries.push(entry);
    else {
      let i = entries.length - 1;
      while (i > 0 && (entries.at(i - 1) as T).deadline > entry.deadline) i--;
      entries.insert(i, entry);
    }
    if (!this.sweeping && this.timed && entries.peek() === entry) this.arm(this.now());
  }

  /** The oldest entry still wanted, left in place (cancelled ones before it are dropped). */
  peek(): T | undefined {
    this.dropCancelled();
    return this.entries.peek();
  }

  /** Takes the oldest entry still wanted before its deadline (cancelled ones before it are dropped). */
  shift(): T | undefined {
    this.dropCancelled();
    const entry = this.entries.shift();
    if (this.entries.length === 0) this.disarm();
    return entry;
  }

  /** Takes every entry still wanted, oldest first, and stops the timer. */
  drain(): T[] {
    this.disarm();
    const out: T[] = [];
    for (let e = this.entries.shift(); e !== undefined; e = this.entries.shift())
      if (!this.cancelled(e)) out.push(e);
    this.tombstones = 0;
    return out;
  }

  /** Hands every entry whose deadline has passed to `expire`, then arms the timer for the next one. */
  sweep(now = this.now()): void {
    if (this.sweeping) return;
    this.sweeping = true;
    const entries = this.entries;
    try {
      for (let e = entries.peek(); e !== undefined; e = entries.peek()) {
        if (this.cancelled(e)) {
          entries.shift();
          if (this.tombstones > 0) this.tombstones--;
          continue;
        }
        if (e.deadline > now) break;
        entries.shift();
        this.expire(e, now);
      }
    } finally {
      this.sweeping = false;
      if (this.timed) this.arm(this.now());
    }
  }

  /** Says one entry was cancelled: when such tombstones make up most of the queue, they are dropped. */
  noteCancelled(): void {
    if (++this.tombstones > 64 && this.tombstones * 2 > this.entries.length) this.compact();
  }

  /** Drops cancelled entries wherever they are (O(length)); returns how many. */
  compact(): number {
    const dropped = this.entries.retain(this.live);
    this.tombstones = 0;
    if (this.entries.length === 0) this.disarm();
    return dropped;
  }

  /** Drops every entry and stops the timer. */
  clear(): void {
    this.disarm();
    this.entries.clear();
    this.tombstones = 0;
  }

  /** The entries held, oldest first, cancelled ones included (the queue must not change meanwhile). */
  [Symbol.iterator](): IterableIterator<T> {
    return this.entries[Symbol.iterator]();
  }

  private dropCancelled(): void {
    const entries = this.entries;
    for (let e = entries.peek(); e !== undefined && this.cancelled(e); e = entries.peek()) {
      entries.shift();
      if (this.tombstones > 0) this.tombstones--;
    }
  }

  /** Arms the timer for the head's deadline, unless it is armed for that time or earlier already. */
  private arm(now: number): void {
    if (!this.timed) return;
    const head = this.entries.peek();
    if (head === undefined) return this.disarm();
    const step = this.resolutionMs;
    const at = step === 1 ? head.deadline : Math.ceil(head.deadline / step) * step;
    if (at === Number.POSITIVE_INFINITY) return;
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    // A timer may fire a little early by this clock: the sweep then finds nothing due and waits again.
    const delay = Math.min(MAX_DELAY_MS, Math.max(1, at - now));
    this.timer = setTimeout(this.onTimer, delay);
    if (!this.keepAlive) this.timer.unref();
    this.timerAt = now + delay;
  }

  private disarm(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
