/**
 * The `file` sink: one JSON line `{"topic": …, "payload": …}` per uplink. Writes are batched: every message
 * that arrives while a write is in flight joins the next write, and all of them are acknowledged when it
 * completes (after fsync when configured).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { GroupCommit } from './group-commit.js';
import {
  messageBody,
  PublishError,
  type PublishCallback,
  type PublishMessage,
  type Publisher,
} from './publisher.js';

export class FilePublisher implements Publisher {
  readonly type = 'file';
  private handle?: Promise<FileHandle>;
  private readonly commits = new GroupCommit((batch) => this.writeBatch(batch));
  private closed = false;

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
    if (this.commits.pendingBytes > this.maxQueuedBytes)
      return done(new PublishError('file sink is backed up', 5));
    const body = messageBody(msg);
    const line = Buffer.concat([
      Buffer.from(`{"topic":${JSON.stringify(msg.topic)},"payload":`),
      body,
      Buffer.from('}\n'),
    ]);
    this.commits.add(line, done);
  }

  private async writeBatch(batch: Buffer[]): Promise<PublishError | null> {
    try {
      const fh = await this.file();
      await fh.writev(batch);
      if (this.fsync) await fh.datasync();
      return null;
    } catch (e) {
      return new PublishError(`file sink write failed: ${(e as Error).message}`, 30, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.commits.idle();
    if (this.handle) await (await this.handle).close();
    this.handle = undefined;
  }
}
