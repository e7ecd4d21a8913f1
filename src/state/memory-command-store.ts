/**
 * The `memory` command store (the embedded default): queues in this process, lost on restart. Capped in
 * things and bytes; a command that would pass a cap is refused, never evicted. Finished commands are dropped
 * after the retention period or when a thing holds more of them than its queue size.
 */
import { Fifo } from '../collections/fifo.js';
import { ApiError } from './api-error.js';
import { ChangeListeners } from './changes.js';
import {
  firstCommandId,
  isActive,
  type Command,
  type CommandLimits,
  type CommandStore,
} from './command-store.js';

export interface MemoryCommandOptions extends CommandLimits {
  maxThings: number;
  maxBytes: number;
  onCap: (cap: string) => void;
}

/** Fixed overhead counted per command besides its data. */
const COMMAND_OVERHEAD = 96;

/** One thing's commands, oldest first. */
class Queue {
  readonly commands = new Fifo<Command>(4);
  bytes = 0;
  constructor(public lastId: number) {}
}

export class MemoryCommandStore implements CommandStore {
  readonly kind = 'memory';
  private readonly queues = new Map<string, Queue>();
  private readonly changes = new ChangeListeners();
  private readonly sweeper: NodeJS.Timeout;
  private bytes = 0;
  expiredCount = 0;

  constructor(private readonly opts: MemoryCommandOptions) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 10_000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.queues.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Expires overdue commands and drops finished ones past retention or past the per-thing cap. */
  private tidy(q: Queue, now: number): void {
    let finished = 0;
    for (const c of q.commands) {
      if (isActive(c) && c.expiresAt <= now) {
        c.state = 'expired';
        c.finishedAt = c.expiresAt;
        this.expiredCount++;
      }
      if (!isActive(c)) finished++;
    }
    if (finished === 0) return;
    const retention = this.opts.retentionMs;
    // Finished commands beyond the per-thing cap go first (oldest first), then those past retention.
    let excess = finished - this.opts.maxQueuedPerThing;
    q.commands.retain((c) => {
      let drop = false;
      if (!isActive(c)) {
        if (excess > 0) {
          excess--;
          drop = true;
        } else drop = (c.finishedAt ?? now) + retention <= now;
      }
      if (drop) {
        const b = COMMAND_OVERHEAD + c.data.length;
        q.bytes -= b;
        this.bytes -= b;
      }
      return !drop;
    });
  }

  private queue(thing: string, now: number): Queue | undefined {
    const q = this.queues.get(thing);
    if (q) this.tidy(q, now);
    return q;
  }

  enqueue(thing: string, data: string, ttlMs: number, now: number): Promise<Command> {
    let q = this.queue(thing, now);
    let active = 0;
    if (q) for (const c of q.commands) if (isActive(c)) active++;
    if (active >= this.opts.maxQueuedPerThing)
      return Promise.reject(
        new ApiError(
          429,
          'LimitExceededException',
          `The command queue of ${thing} is full (${this.opts.maxQueuedPerThing} undelivered commands)`,
        ),
      );
    const bytes = COMMAND_OVERHEAD + data.length;
    if ((!q && this.queues.size >= this.opts.maxThings) || this.bytes + bytes > this.opts.maxBytes) {
      this.opts.onCap(q ? 'downlink_memory_command_bytes' : 'downlink_memory_command_queues');
      return Promise.reject(
        new ApiError(503, 'ServiceUnavailableException', 'Command store full (downlink.commands.memory)'),
      );
    }
    if (!q) {
      q = new Queue(firstCommandId(now) - 1);
      this.queues.set(thing, q);
    }
    const command: Command = {
      id: ++q.lastId,
      data,
      state: 'queued',
      enqueuedAt: now,
      expiresAt: now + ttlMs,
      attempts: 0,
    };
    q.commands.push(command);
    q.bytes += bytes;
    this.bytes += bytes;
    this.changes.emit(thing);
    return Promise.resolve({ ...command });
  }

  pending(thing: string, now: number): Promise<Command[]> {
    const q = this.queue(thing, now);
    const out: Command[] = [];
    if (q) for (const c of q.commands) if (isActive(c)) out.push({ ...c });
    return Promise.resolve(out);
  }

  markSent(thing: string, ids: readonly number[], now: number): Promise<void> {
    const q = this.queue(thing, now);
    if (q) {
      for (const c of q.commands) {
        if (isActive(c) && ids.includes(c.id)) {
          c.state = 'sent';
          c.sentAt = now;
          c.attempts++;
        }
      }
    }
    return Promise.resolve();
  }

  markDelivered(thing: string, lastId: number, now: number): Promise<number> {
    const q = this.queue(thing, now);
    let n = 0;
    if (q) {
      for (const c of q.commands) {
        if (c.id > lastId) break;
        if (!isActive(c)) continue;
        c.state = 'delivered';
        c.finishedAt = now;
        n++;
      }
    }
    if (n) this.changes.emit(thing);
    return Promise.resolve(n);
  }

  list(thing: string, now: number): Promise<Command[]> {
    const q = this.queue(thing, now);
    return Promise.resolve(q ? Array.from(q.commands, (c) => ({ ...c })) : []);
  }

  /** Drops queues that hold nothing any more. */
  sweep(now: number): void {
    for (const [thing, q] of this.queues) {
      this.tidy(q, now);
      if (q.commands.length === 0) this.queues.delete(thing);
    }
  }

  onChange(listener: (thing: string) => void): void {
    this.changes.add(listener);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    this.queues.clear();
    this.bytes = 0;
    return Promise.resolve();
  }
}
