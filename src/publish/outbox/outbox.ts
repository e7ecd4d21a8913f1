/**
 * The durable outbox (`ack: after-outbox`): a Publisher around a Publisher. A message is acknowledged once
 * it is committed to the local segment log (group commit, fdatasync), so a device gets its 2.04 in
 * milliseconds while the sink is slow or down; the log then drains to the sink in log order, several
 * messages at a time, and moves its saved cursor over the contiguous prefix the sink accepted. After a crash
 * the drain resumes from the saved cursor: nothing acknowledged is lost, and a message may be published
 * again (same message id) when the crash came between its delivery and the next cursor save.
 */
import { Fifo } from '../../collections/fifo.js';
import type { OutboxConfig } from '../../config/publisher.js';
import type { Logger } from '../../ops/logger.js';
import {
  counterFrom,
  FastHistogram,
  gaugeFrom,
  type CapReporter,
  type MetricsRegistry,
} from '../../ops/metrics.js';
import { PublishError, type PublishCallback, type PublishMessage, type Publisher } from '../publisher.js';
import { encodeRecord } from './record.js';
import { LogReader, SegmentLog, type LogRecord, type RecoveryReport } from './segment-log.js';

export interface OutboxDeps {
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
}

/** Cap on bytes of messages read from the log and not yet delivered. */
const MAX_WINDOW_BYTES = 16 * 1024 * 1024;
/** Readiness needs room for at least one more large message. */
const READY_HEADROOM = 128 * 1024;
const MIN_PAUSE_MS = 100;
const MAX_PAUSE_MS = 30_000;

const SENDING = 0;
const DONE = 1;
const FAILED = 2;

/** A record handed to the sink, waiting for its answer. */
class InFlightRecord {
  state = SENDING;
  readonly done: PublishCallback;
  constructor(
    readonly rec: LogRecord,
    outbox: Outbox,
  ) {
    this.done = (err) => outbox.delivered(this, err);
  }
}

type Refusal = 'full' | 'memory' | 'closed' | 'broken' | 'too_large';

export class Outbox implements Publisher {
  readonly type: string;
  private readonly reader: LogReader;
  private buffered: LogRecord[] = [];
  private bufferedAt = 0;
  private reading = false;
  /** Records handed to the sink and not yet behind the delivered mark, in log order. */
  private readonly window = new Fifo<InFlightRecord>();
  private windowBytes = 0;
  private sending = 0;
  private failedRecords = 0;
  private pumping = false;
  private pausedUntil = 0;
  private pauseTimer?: NodeJS.Timeout;
  private cursorTimer?: NodeJS.Timeout;
  private savingCursor = false;
  /** Everything before this offset was delivered. */
  private deliveredTo: number;
  /** Records appended (or being appended) and not yet delivered. */
  private records: number;
  private closed = false;
  private settled?: () => void;
  private appended = 0;
  private delivered_ = 0;
  private deliveryFailures = 0;
  private dropped = 0;
  private readonly refused: Record<Refusal, number> = {
    full: 0,
    memory: 0,
    closed: 0,
    broken: 0,
    too_large: 0,
  };

  private constructor(
    private readonly inner: Publisher,
    private readonly segments: SegmentLog,
    private readonly config: OutboxConfig,
    private readonly deps: OutboxDeps,
    recovered: RecoveryReport,
  ) {
    this.type = inner.type;
    this.deliveredTo = segments.cursor;
    this.records = recovered.records;
    this.reader = new LogReader(segments, segments.cursor, (at, segEnd) => {
      deps.log.error({ dir: config.dir, offset: at, bytes: segEnd - at }, 'outbox: damaged records skipped');
      return Promise.resolve(segEnd);
    });
    segments.onCommit = () => this.pump();
    segments.onAppendFailed = (n) => (this.records -= n);
    this.registerMetrics(deps.metrics);
  }

  /** Opens the outbox in `config.dir` (recovering what a previous run left) and starts draining into `inner`. */
  static async open(inner: Publisher, config: OutboxConfig, deps: OutboxDeps): Promise<Outbox> {
    const { log, report } = await SegmentLog.open(
      {
        dir: config.dir,
        segmentBytes: Math.min(config.segmentBytes, Math.max(64 * 1024, Math.floor(config.maxBytes / 4))),
        fsync: config.fsync,
      },
      deps.log,
    );
    if (report.records > 0 || report.truncatedBytes > 0 || report.skippedBytes > 0)
      deps.log.info({ dir: config.dir, ...report }, 'outbox: resuming delivery of stored messages');
    const outbox = new Outbox(inner, log, config, deps, report);
    outbox.pump();
    return outbox;
  }

  ready(): boolean {
    return !this.closed && !this.segments.broken && !this.full(READY_HEADROOM);
  }

  /** Messages stored and not yet delivered. */
  pending(): number {
    return this.records;
  }

  publish(msg: PublishMessage, done: PublishCallback): void {
    if (this.closed) return this.refuse('closed', done, new PublishError('publisher is closed', 5));
    if (this.segments.broken) return this.refuse('broken', done, this.segments.broken);
    let rec: Buffer;
    try {
      rec = encodeRecord(msg, Date.now());
    } catch (e) {
      return this.refuse('too_large', done, new PublishError((e as Error).message, 30, { permanent: true }));
    }
    if (this.full(rec.length)) {
      this.deps.caps.hit('outbox_size');
      return this.refuse('full', done, new PublishError('outbox is full', 30));
    }
    if (this.segments.pendingBytes + rec.length > this.config.maxPendingBytes) {
      this.deps.caps.hit('outbox_pending_bytes');
      return this.refuse('memory', done, new PublishError('outbox writes are backed up', 1));
    }
    this.records++;
    this.appended++;
    this.segments.append(rec, done);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pauseTimer);
    await this.segments.idle();
    if (this.sending > 0) await new Promise<void>((r) => (this.settled = r));
    clearTimeout(this.cursorTimer);
    while (this.savingCursor) await new Promise((r) => setTimeout(r, 5));
    if (this.deliveredTo > this.segments.cursor) await this.segments.saveCursor(this.deliveredTo);
    await this.segments.close();
    await this.inner.close();
  }

  private full(extra: number): boolean {
    return this.segments.bytes + extra > this.config.maxBytes || this.records >= this.config.maxRecords;
  }

  private refuse(reason: Refusal, done: PublishCallback, err: PublishError): void {
    this.refused[reason]++;
    done(err);
  }

  /** Hands records to the sink: failed ones again first, then new ones in log order, within the window. */
  private pump(): void {
    if (this.pumping || this.closed || this.pauseTimer) return;
    if (!this.inner.ready()) return this.pause(1);
    this.pumping = true;
    if (this.failedRecords > 0) {
      // Collected first: a sink that answers at once moves the window while we go.
      const failed: InFlightRecord[] = [];
      for (const inFlight of this.window) if (inFlight.state === FAILED) failed.push(inFlight);
      for (let i = 0; i < failed.length && this.failedRecords > 0; i++) {
        const inFlight = failed[i];
        if (inFlight.state !== FAILED) continue;
        inFlight.state = SENDING;
        this.failedRecords--;
        this.send(inFlight);
        if (this.pauseTimer) break;
      }
    }
    while (
      !this.pauseTimer &&
      this.inWindow() < this.config.maxInFlight &&
      this.windowBytes < MAX_WINDOW_BYTES
    ) {
      if (this.bufferedAt >= this.buffered.length) {
        if (!this.reading && this.reader.pos < this.segments.end) this.readMore();
        break;
      }
      const rec = this.buffered[this.bufferedAt++];
      const inFlight = new InFlightRecord(rec, this);
      this.window.push(inFlight);
      this.windowBytes += rec.size;
      this.send(inFlight);
    }
    this.pumping = false;
  }

  private inWindow(): number {
    return this.window.length;
  }

  private send(inFlight: InFlightRecord): void {
    this.sending++;
    this.inner.publish(inFlight.rec.msg, inFlight.done);
  }

  private readMore(): void {
    this.reading = true;
    this.buffered = [];
    this.bufferedAt = 0;
    this.reader.next(this.config.maxInFlight, MAX_WINDOW_BYTES - this.windowBytes).then(
      (recs) => {
        this.buffered = recs;
        this.reading = false;
        this.pump();
      },
      (err: unknown) => {
        this.reading = false;
        this.deps.log.error(
          { err: (err as Error).message, dir: this.config.dir },
          'outbox: reading the log failed',
        );
        this.pause(1);
      },
    );
  }

  /** @internal The sink's answer for one record. */
  delivered(inFlight: InFlightRecord, err: PublishError | null): void {
    this.sending--;
    if (err?.permanent) {
      // The sink refused this message itself (too large, invalid topic): holding it would block the log.
      this.dropped++;
      this.deps.log.error(
        { messageId: inFlight.rec.msg.id, topic: inFlight.rec.msg.topic, err: err.message },
        'outbox: the sink refused a stored message for good; dropped',
      );
      inFlight.state = DONE;
      this.advance();
    } else if (err) {
      inFlight.state = FAILED;
      this.failedRecords++;
      this.deliveryFailures++;
      this.pause(err.retryAfterSeconds);
    } else {
      inFlight.state = DONE;
      this.delivered_++;
      this.advance();
    }
    if (this.closed) {
      if (this.sending === 0) this.settled?.();
      return;
    }
    this.pump();
  }

  /** Moves the delivered mark over the contiguous delivered prefix of the window. */
  private advance(): void {
    let moved = false;
    while (this.window.peek()?.state === DONE) {
      const inFlight = this.window.shift() as InFlightRecord;
      this.windowBytes -= inFlight.rec.size;
      this.deliveredTo = inFlight.rec.offset + inFlight.rec.size;
      this.records--;
      moved = true;
    }
    if (!moved) return;
    if (!this.cursorTimer && !this.closed) {
      this.cursorTimer = setTimeout(() => this.saveCursor(), this.config.cursorIntervalMs).unref();
    }
  }

  private saveCursor(): void {
    this.cursorTimer = undefined;
    if (this.savingCursor || this.deliveredTo <= this.segments.cursor) return;
    this.savingCursor = true;
    this.segments.saveCursor(this.deliveredTo).then(
      () => {
        this.savingCursor = false;
      },
      (err: unknown) => {
        this.savingCursor = false;
        this.deps.log.error(
          { err: (err as Error).message, dir: this.config.dir },
          'outbox: saving the cursor failed',
        );
      },
    );
  }

  /** Stops handing out records for a while after a failure (the sink said when to come back). */
  private pause(retryAfterSeconds: number): void {
    if (this.pauseTimer || this.closed) return;
    const base = Math.min(MAX_PAUSE_MS, Math.max(MIN_PAUSE_MS, retryAfterSeconds * 1000));
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.pausedUntil = Date.now() + delay;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = undefined;
      this.pump();
    }, delay).unref();
  }

  private oldestSeconds(): number {
    const head =
      this.window.length > 0
        ? this.window.peek()!.rec
        : this.bufferedAt < this.buffered.length
          ? this.buffered[this.bufferedAt]
          : undefined;
    return head ? Math.max(0, (Date.now() - head.msg.appendedAt) / 1000) : 0;
  }

  private registerMetrics(r: MetricsRegistry): void {
    gaugeFrom(r, 'cellgate_outbox_bytes', 'Bytes the outbox holds on disk.', () => this.segments.bytes);
    gaugeFrom(
      r,
      'cellgate_outbox_messages',
      'Messages stored in the outbox and not yet delivered.',
      () => this.records,
    );
    gaugeFrom(
      r,
      'cellgate_outbox_segments',
      'Segment files of the outbox.',
      () => this.segments.segmentCount,
    );
    gaugeFrom(
      r,
      'cellgate_outbox_oldest_seconds',
      'Age of the oldest message not yet delivered (0 when the outbox is drained).',
      () => this.oldestSeconds(),
    );
    gaugeFrom(r, 'cellgate_outbox_paused', '1 while delivery waits after a failure of the sink.', () =>
      this.pauseTimer && this.pausedUntil > Date.now() ? 1 : 0,
    );
    counterFrom(r, 'cellgate_outbox_appends_total', 'Messages stored in the outbox.', () => this.appended);
    counterFrom(
      r,
      'cellgate_outbox_delivered_total',
      'Stored messages the sink accepted.',
      () => this.delivered_,
    );
    counterFrom(
      r,
      'cellgate_outbox_delivery_failures_total',
      'Deliveries from the outbox that failed and will be retried.',
      () => this.deliveryFailures,
    );
    counterFrom(
      r,
      'cellgate_outbox_dropped_total',
      'Stored messages dropped because the sink refused them for good (logged with their message id).',
      () => this.dropped,
    );
    counterFrom(
      r,
      'cellgate_outbox_refused_total',
      'Messages the outbox refused, by reason.',
      () => this.refused,
      'reason',
    );
    counterFrom(
      r,
      'cellgate_outbox_commits_total',
      'Group commits (write and fdatasync) of the outbox.',
      () => this.segments.commits,
    );
    const commit = new FastHistogram(
      r,
      'cellgate_outbox_commit_seconds',
      'Time to write and sync one group commit.',
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    );
    this.segments.onCommitTime = (s) => commit.observe(s);
  }
}
