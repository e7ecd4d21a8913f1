/**
 * The `file` sink: one JSON line `{"topic": …, "payload": …}` per uplink. Writes are batched: every message
 * that arrives while a write is in flight joins the next write, and all of them are acknowledged when it
 * completes (after fsync when configured).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  messageBody,
  PublishError,
  type PublishCallback,
  type PublishMessage,
  type Publisher,
} from './publisher.js';

const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export class FilePublisher implements Publisher {
  readonly type = 'file';
  private handle?: Promise<FileHandle>;
  private chunks: Buffer[] = [];
  private callbacks: PublishCallback[] = [];
  private queuedBytes = 0;
  private writing = false;
  private closed = false;
  private idle?: () => void;

  constructor(
    readonly path: string,
    private readonly fsync = false,
    /** Cap on bytes waiting for the next write; past it, publishes fail fast with 5.03. */
    private readonly maxQueuedBytes = 64 * 1024 * 1024,
  ) {}

  private file(): Promise<FileHandle> {
    if (!this.handle) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.handle = open(this.path, 'a');
    }
    return this.handle;
  }

  ready(): boolean {
    return !this.closed;
  }

  publish(msg: PublishMessage, done: PublishCallback): void {
    if (this.closed) return done(new PublishError('publisher is closed', 5));
    if (this.queuedBytes > this.maxQueuedBytes) return done(new PublishError('file sink is backed up', 5));
    const body = messageBody(msg);
    const line = Buffer.concat([
      Buffer.from(`{"topic":${JSON.stringify(msg.topic)},"payload":`),
      body,
      Buffer.from('}\n'),
    ]);
    this.chunks.push(line);
    this.callbacks.push(done);
    this.queuedBytes += line.length;
    if (!this.writing) void this.flush();
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.chunks.length > 0) {
      let take = 0;
      let bytes = 0;
      while (
        take < this.chunks.length &&
        (take === 0 || bytes + this.chunks[take].length <= MAX_BATCH_BYTES)
      ) {
        bytes += this.chunks[take].length;
        take++;
      }
      const batch = this.chunks.splice(0, take);
      const cbs = this.callbacks.splice(0, take);
      this.queuedBytes -= bytes;
      let err: PublishError | null = null;
      try {
        const fh = await this.file();
        await fh.writev(batch);
        if (this.fsync) await fh.datasync();
      } catch (e) {
        err = new PublishError(`file sink write failed: ${(e as Error).message}`, 30, { cause: e });
      }
      for (const cb of cbs) cb(err);
    }
    this.writing = false;
    this.idle?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.writing) await new Promise<void>((r) => (this.idle = r));
    if (this.handle) await (await this.handle).close();
    this.handle = undefined;
  }
}
