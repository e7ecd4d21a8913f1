/**
 * Group commit: buffers handed in while a write is in flight wait and go out together in the next write,
 * and each buffer's callback runs when the write that carried it completed (or failed). One write at a time,
 * at most `maxBatchBytes` per write (a single larger buffer goes alone).
 */
import type { PublishCallback, PublishError } from './publisher.js';

/** Writes one batch; resolves with the error to hand every callback of the batch, or null. */
export type BatchWriter = (batch: Buffer[], bytes: number) => Promise<PublishError | null>;

export class GroupCommit {
  private buffers: Buffer[] = [];
  private callbacks: PublishCallback[] = [];
  /** Bytes waiting for the next write. */
  pendingBytes = 0;
  private writing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly write: BatchWriter,
    private readonly maxBatchBytes = 4 * 1024 * 1024,
  ) {}

  add(buf: Buffer, done: PublishCallback): void {
    this.buffers.push(buf);
    this.callbacks.push(done);
    this.pendingBytes += buf.length;
    if (!this.writing) void this.run();
  }

  /** Fails everything waiting (the writer cannot go on). */
  failPending(err: PublishError): number {
    const callbacks = this.callbacks.splice(0);
    this.buffers.length = 0;
    this.pendingBytes = 0;
    for (const cb of callbacks) cb(err);
    return callbacks.length;
  }

  /** Resolves once nothing is being written. */
  async idle(): Promise<void> {
    while (this.writing) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private async run(): Promise<void> {
    this.writing = true;
    while (this.buffers.length > 0) {
      let take = 0;
      let bytes = 0;
      while (
        take < this.buffers.length &&
        (take === 0 || bytes + this.buffers[take].length <= this.maxBatchBytes)
      ) {
        bytes += this.buffers[take].length;
        take++;
      }
      const batch = this.buffers.splice(0, take);
      const callbacks = this.callbacks.splice(0, take);
      this.pendingBytes -= bytes;
      const err = await this.write(batch, bytes);
      for (const cb of callbacks) cb(err);
    }
    this.writing = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
