/**
 * Command queues, one per thing: commands are queued with a time-to-live, offered to the device in order
 * (`sent`), and end `delivered` (the device confirmed them) or `expired` (their TTL passed first). Finished
 * commands stay listable for a retention period. Ids increase per thing: a device executes a command only when
 * its id is higher than the last one it executed, so a command offered again is never applied twice.
 */

export type CommandState = 'queued' | 'sent' | 'delivered' | 'expired';

export interface Command {
  readonly id: number;
  /** The command's data as JSON text, as it was queued. */
  readonly data: string;
  state: CommandState;
  /** Times in ms since the epoch. */
  readonly enqueuedAt: number;
  readonly expiresAt: number;
  /** Last time it was offered to the device. */
  sentAt?: number;
  /** When it was delivered or expired. */
  finishedAt?: number;
  /** How many responses carried it. */
  attempts: number;
}

export interface CommandLimits {
  maxQueuedPerThing: number;
  maxCommandBytes: number;
  retentionMs: number;
}

export interface CommandStore {
  readonly kind: 'memory' | 'redis';
  /** Queues a command; throws `ApiError` 429 when the thing's queue is full. */
  enqueue(thing: string, data: string, ttlMs: number, now: number): Promise<Command>;
  /** Commands still to deliver (queued or sent, not expired), in order. */
  pending(thing: string, now: number): Promise<Command[]>;
  /** Records that a response carried these commands. */
  markSent(thing: string, ids: readonly number[], now: number): Promise<void>;
  /** The device confirmed every command up to `lastId`: they are delivered. Returns how many changed. */
  markDelivered(thing: string, lastId: number, now: number): Promise<number>;
  /** Every command of the thing still held, finished ones included, in order. */
  list(thing: string, now: number): Promise<Command[]>;
  /** Commands that expired undelivered, counted by this process. */
  readonly expiredCount: number;
  onChange(listener: (thing: string) => void): void;
  close(): Promise<void>;
}

export function isActive(c: Command): boolean {
  return c.state === 'queued' || c.state === 'sent';
}

/** The first id of a thing that has no counter: the current Unix time, so ids keep increasing after a reset. */
export function firstCommandId(now: number): number {
  return Math.floor(now / 1000);
}
