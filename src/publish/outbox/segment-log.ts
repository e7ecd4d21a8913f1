/**
 * The outbox's storage: an append-only log split into segment files, addressed by a global byte offset (a
 * segment is named by the offset of its first byte, so offsets run on across segments), plus a cursor file
 * saying how far the log has been delivered.
 *
 * Appends use group commit: records that arrive while a write and fdatasync are in flight go out together
 * in the next one, and each is acknowledged only after its batch is on disk. Reopening the log scans what was
 * not delivered, cuts off a torn tail left by a crash mid-write, and resumes. Delivered segments are
 * deleted once the cursor that covers them is saved.
 */
import { mkdir, open, readdir, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../../ops/logger.js';
import { ConfigError } from '../../config/errors.js';
import { GroupCommit } from '../group-commit.js';
import { PublishError } from '../publisher.js';
import { crc32, decodeRecord, type StoredMessage } from './record.js';

export interface SegmentLogOptions {
  dir: string;
  /** A new segment starts once the current one holds this many bytes. */
  segmentBytes: number;
  /** fdatasync each batch before acknowledging it. */
  fsync: boolean;
}

export type AppendCallback = (err: PublishError | null) => void;

interface Segment {
  base: number;
  path: string;
}

const SEGMENT_RE = /^(\d{20})\.seg$/;
const CURSOR_FILE = 'cursor';
const LOCK_FILE = 'lock';
/** Outbox folders this process has open. */
const OPEN_DIRS = new Set<string>();
const CURSOR_MAGIC = 0x43475442; // "CGTB"
const MAX_WRITE = 4 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;

const segmentName = (base: number) => `${String(base).padStart(20, '0')}.seg`;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface RecoveryReport {
  /** Undelivered records found. */
  records: number;
  /** Bytes cut off the end of the last segment (an unacknowledged, torn write). */
  truncatedBytes: number;
  /** Bytes skipped because they did not check out (corruption before the end). */
  skippedBytes: number;
}

export class SegmentLog {
  private readonly segments: Segment[] = [];
  private writer!: FileHandle;
  /** Bytes of the active segment on disk (committed). */
  private activeSize = 0;
  /** Global offset up to which records are committed (durable when `fsync`). */
  end = 0;
  /** Saved delivery position: everything before it was delivered. */
  cursor = 0;
  private readonly commitQueue = new GroupCommit((batch, bytes) => this.writeBatch(batch, bytes), MAX_WRITE);
  /** Set once a failed write could not be undone: the log refuses appends. */
  broken: PublishError | null = null;
  /** Called after each commit (the drain listens). */
  onCommit: () => void = () => {};
  /** Called with each commit's duration in seconds (metrics). */
  onCommitTime: (seconds: number) => void = () => {};
  /** Called with the number of appends a failed write refused. */
  onAppendFailed: (count: number) => void = () => {};
  commits = 0;
  private reader?: { fh: FileHandle; base: number };

  private constructor(
    private readonly opts: SegmentLogOptions,
    private readonly log: Logger,
  ) {}

  /** Opens (or creates) the log in `opts.dir` and recovers it. */
  static async open(
    opts: SegmentLogOptions,
    log: Logger,
  ): Promise<{ log: SegmentLog; report: RecoveryReport }> {
    const s = new SegmentLog(opts, log);
    try {
      return { log: s, report: await s.recover() };
    } catch (err) {
      await (s.writer as FileHandle | undefined)?.close().catch(() => undefined);
      OPEN_DIRS.delete(resolve(opts.dir));
      throw err;
    }
  }

  /** Bytes the log holds on disk (delivered segments go once the cursor passes them). */
  get bytes(): number {
    return this.end + this.pendingBytes - this.segments[0].base;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Bytes waiting for the next commit. */
  get pendingBytes(): number {
    return this.commitQueue.pendingBytes;
  }

  /** Appends one encoded record; `done` runs once it is committed (or failed). */
  append(record: Buffer, done: AppendCallback): void {
    if (this.broken) return done(this.broken);
    this.commitQueue.add(record, done);
  }

  /** Writes (and syncs) one group of records at the end of the log, starting a new segment when due. */
  private async writeBatch(batch: Buffer[], bytes: number): Promise<PublishError | null> {
    if (this.broken) {
      this.onAppendFailed(batch.length);
      return this.broken;
    }
    const t0 = performance.now();
    try {
      if (this.activeSize >= this.opts.segmentBytes) await this.roll();
      const buf = batch.length === 1 ? batch[0] : Buffer.concat(batch, bytes);
      let written = 0;
      while (written < bytes) {
        const r = await this.writer.write(buf, written, bytes - written, this.activeSize + written);
        written += r.bytesWritten;
      }
      if (this.opts.fsync) await this.writer.datasync();
      this.activeSize += bytes;
      this.end += bytes;
      this.commits++;
      this.onCommitTime((performance.now() - t0) / 1000);
      this.onCommit();
      return null;
    } catch (e) {
      await this.undoFailedWrite(e as Error);
      this.onAppendFailed(batch.length);
      if (this.broken) this.onAppendFailed(this.commitQueue.failPending(this.broken));
      return new PublishError(`outbox write failed: ${(e as Error).message}`, 5, { cause: e });
    }
  }

  /** A write or sync failed: cut the segment back to what was committed, or give up on the log. */
  private async undoFailedWrite(err: Error): Promise<void> {
    this.log.error({ err: err.message, dir: this.opts.dir }, 'outbox write failed');
    try {
      await this.writer.truncate(this.activeSize);
      if (this.opts.fsync) await this.writer.datasync();
    } catch (e) {
      this.broken = new PublishError(`outbox is unusable after a failed write: ${(e as Error).message}`, 30);
      this.log.error({ err: (e as Error).message }, this.broken.message);
    }
  }

  /** Starts a new segment at the current end. */
  private async roll(): Promise<void> {
    const base = this.end;
    const path = join(this.opts.dir, segmentName(base));
    const fh = await open(path, 'wx');
    await fsyncDir(this.opts.dir);
    await this.writer.close();
    this.writer = fh;
    this.activeSize = 0;
    this.segments.push({ base, path });
  }

  /**
   * Reads up to `maxBytes` committed bytes from global offset `from`, within one segment. Returns null when
   * there is nothing committed at `from` yet. The returned offset `next` is where the next segment begins when
   * `from` was at the end of one.
   */
  async read(from: number, maxBytes: number): Promise<{ buf: Buffer; at: number } | null> {
    if (from >= this.end) return null;
    const i = this.segmentIndex(from);
    const seg = this.segments[i];
    const segEnd = i + 1 < this.segments.length ? this.segments[i + 1].base : this.end;
    const len = Math.min(maxBytes, segEnd - from);
    if (len <= 0) return null;
    if (!this.reader || this.reader.base !== seg.base) {
      await this.reader?.fh.close();
      this.reader = { fh: await open(seg.path, 'r'), base: seg.base };
    }
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const r = await this.reader.fh.read(buf, got, len - got, from - seg.base + got);
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    return { buf: got === len ? buf : buf.subarray(0, got), at: from };
  }

  /** Where the segment holding `offset` ends (the next segment's base, or the log's end). */
  segmentEnd(offset: number): number {
    const i = this.segmentIndex(offset);
    return i + 1 < this.segments.length ? this.segments[i + 1].base : this.end;
  }

  private segmentIndex(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid].base <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Saves the delivery position durably, then deletes segments wholly before it. */
  async saveCursor(offset: number): Promise<void> {
    const buf = Buffer.alloc(16);
    buf.writeUInt32BE(CURSOR_MAGIC, 0);
    buf.writeUIntBE(Math.floor(offset / 0x10000), 4, 6);
    buf.writeUInt16BE(offset % 0x10000, 10);
    buf.writeUInt32BE(crc32(buf, 0, 12), 12);
    const tmp = join(this.opts.dir, `${CURSOR_FILE}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.write(buf, 0, 16, 0);
      if (this.opts.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.opts.dir, CURSOR_FILE));
    this.cursor = offset;
    while (this.segments.length > 1 && this.segments[1].base <= offset) {
      const seg = this.segments.shift()!;
      if (this.reader?.base === seg.base) {
        await this.reader.fh.close();
        this.reader = undefined;
      }
      await unlink(seg.path);
    }
  }

  private async readCursor(): Promise<number | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(join(this.opts.dir, CURSOR_FILE), 'r');
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.alloc(16);
      const { bytesRead } = await fh.read(buf, 0, 16, 0);
      if (
        bytesRead !== 16 ||
        buf.readUInt32BE(0) !== CURSOR_MAGIC ||
        crc32(buf, 0, 12) !== buf.readUInt32BE(12)
      ) {
        this.log.warn(
          { dir: this.opts.dir },
          'outbox cursor file is damaged; delivering from the oldest segment',
        );
        return undefined;
      }
      return buf.readUIntBE(4, 6) * 0x10000 + buf.readUInt16BE(10);
    } finally {
      await fh.close();
    }
  }

  private async recover(): Promise<RecoveryReport> {
    const dir = this.opts.dir;
    await mkdir(dir, { recursive: true });
    await this.lock();
    const bases = (await readdir(dir))
      .map((f) => SEGMENT_RE.exec(f)?.[1])
      .filter((b): b is string => b !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const base of bases) this.segments.push({ base, path: join(dir, segmentName(base)) });
    const saved = await this.readCursor();
    if (this.segments.length === 0) {
      const base = saved ?? 0;
      const path = join(dir, segmentName(base));
      this.writer = await open(path, 'w');
      await fsyncDir(dir);
      this.segments.push({ base, path });
      this.cursor = this.end = base;
      return { records: 0, truncatedBytes: 0, skippedBytes: 0 };
    }
    this.cursor = Math.max(saved ?? 0, this.segments[0].base);
    while (this.segments.length > 1 && this.segments[1].base <= this.cursor)
      await unlink(this.segments.shift()!.path);

    const last = this.segments[this.segments.length - 1];
    this.writer = await open(last.path, 'r+');
    const lastSize = (await this.writer.stat()).size;
    this.end = last.base + lastSize;
    this.activeSize = lastSize;
    if (this.cursor > this.end) this.cursor = this.end;

    const report: RecoveryReport = { records: 0, truncatedBytes: 0, skippedBytes: 0 };
    const reader = new LogReader(this, this.cursor, async (bad, segEnd) => {
      if (segEnd !== this.end) {
        report.skippedBytes += segEnd - bad;
        this.log.error({ dir, offset: bad, bytes: segEnd - bad }, 'outbox: damaged records skipped');
        return segEnd;
      }
      report.truncatedBytes = this.end - bad;
      await this.writer.truncate(bad - last.base);
      await this.writer.sync();
      this.end = bad;
      this.activeSize = bad - last.base;
      this.log.warn({ dir, bytes: report.truncatedBytes }, 'outbox: cut off a torn, unacknowledged write');
      return bad;
    });
    for (;;) {
      const n = (await reader.next(100_000, 64 * 1024 * 1024)).length;
      if (n === 0) break;
      report.records += n;
    }
    return report;
  }

  /** Resolves once every append so far is committed or failed. */
  idle(): Promise<void> {
    return this.commitQueue.idle();
  }

  /** Waits for the writes in flight, then closes the files. */
  async close(): Promise<void> {
    await this.idle();
    await this.reader?.fh.close();
    this.reader = undefined;
    await this.writer.close();
    await unlink(join(this.opts.dir, LOCK_FILE)).catch(() => undefined);
    OPEN_DIRS.delete(resolve(this.opts.dir));
  }

  /**
   * Claims the folder: one process, one outbox. A lock left by this host (a restarted container, a crashed
   * process) is taken over unless its process still runs; a lock of another host means the folder is shared
   * between replicas, which would mix their logs, so the outbox refuses to open.
   */
  private async lock(): Promise<void> {
    const dir = resolve(this.opts.dir);
    if (OPEN_DIRS.has(dir)) throw new Error(`outbox ${dir} is already open in this process`);
    const path = join(dir, LOCK_FILE);
    const me = `${hostname()} ${process.pid}`;
    let held: string | undefined;
    try {
      held = (await readFile(path, 'utf8')).trim();
    } catch {
      held = undefined;
    }
    if (held && held !== me) {
      const [host, pidText] = held.split(' ');
      const pid = Number(pidText);
      if (host !== hostname())
        throw new ConfigError(
          `publisher.outbox.dir: outbox ${dir} belongs to host ${host}: give each gateway process its own outbox folder`,
          { code: 'CELLGATE_OUTBOX_IN_USE' },
        );
      if (pid !== process.pid && pidAlive(pid))
        throw new ConfigError(
          `publisher.outbox.dir: outbox ${dir} is in use by process ${pid} on this host: stop it, or give this ` +
            'gateway its own outbox folder (CELLGATE_PUBLISHER__OUTBOX__DIR)',
          { code: 'CELLGATE_OUTBOX_IN_USE' },
        );
    }
    await writeFile(path, `${me}\n`);
    OPEN_DIRS.add(dir);
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface LogRecord {
  /** Global offset of the record. */
  offset: number;
  /** Its size on disk. */
  size: number;
  msg: StoredMessage;
}

/**
 * Reads records in order from a global offset, in chunks, over segment boundaries. Damaged bytes are handed
 * to `onDamage(at, segmentEnd)`, which says where to read on.
 */
export class LogReader {
  private buf?: Buffer;
  private off = 0;
  private want = READ_CHUNK;

  constructor(
    private readonly log: SegmentLog,
    /** Offset of the next record to return. */
    public pos: number,
    private readonly onDamage: (at: number, segmentEnd: number) => Promise<number>,
  ) {}

  /** Up to `maxRecords` committed records (and about `maxBytes`); none when the reader is at the end. */
  async next(maxRecords: number, maxBytes: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    let bytes = 0;
    while (out.length < maxRecords && bytes < maxBytes) {
      if (!this.buf || this.off >= this.buf.length) {
        const chunk = await this.log.read(this.pos, this.want);
        if (!chunk) break;
        this.buf = chunk.buf;
        this.off = 0;
      }
      const r = decodeRecord(this.buf, this.off);
      if (r.kind === 'record') {
        out.push({ offset: this.pos, size: r.size, msg: r.msg });
        this.pos += r.size;
        this.off += r.size;
        bytes += r.size;
        this.want = READ_CHUNK;
        continue;
      }
      const segEnd = this.log.segmentEnd(this.pos);
      this.buf = undefined;
      if (r.kind === 'short' && this.off > 0) continue; // the record goes on past this chunk: read from it
      if (r.kind === 'short' && this.pos + r.need <= Math.min(segEnd, this.log.end)) {
        this.want = Math.max(READ_CHUNK, r.need); // a record larger than a chunk
        continue;
      }
      this.pos = await this.onDamage(this.pos, segEnd);
      this.want = READ_CHUNK;
      if (this.pos >= this.log.end) break;
    }
    return out;
  }
}
