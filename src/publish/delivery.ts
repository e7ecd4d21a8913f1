/**
 * Delivery of messages to a network sink (AWS IoT Core, an MQTT broker): a bounded queue in front of a
 * bounded number of messages in progress, attempts with a time limit that really aborts, retries with
 * jittered backoff, and a circuit breaker that turns sustained failure into immediate 5.03 answers.
 *
 * A sink does one attempt at a time per message and reports it with `settle`; everything else lives here.
 * Hot path: one DeliveryJob per message and one small deadline record per attempt, no closures or promises here;
 * counts are plain numbers read at scrape time. Time limits are two deadline queues with one timer each:
 * waiting messages (their deadline) and running attempts (the request timeout, or the message's deadline if
 * that comes first).
 */
import { DeadlineQueue } from '../collections/deadline-queue.js';
import type { DeliveryConfig } from '../config/publisher.js';
import type { Logger } from '../ops/logger.js';
import {
  counterFrom,
  FastHistogram,
  gaugeFrom,
  type CapReporter,
  type MetricsRegistry,
} from '../ops/metrics.js';
import { backoffDelay } from './backoff.js';
import { BreakerState, CircuitBreaker } from './breaker.js';
import {
  messageBody,
  PublishError,
  type PublishCallback,
  type PublishMessage,
  type Publisher,
} from './publisher.js';

/**
 * Why an attempt failed. `throttled`, `server`, `timeout` and `network` are retried with backoff; `stale`
 * (a reused keep-alive connection was closed under us, a clock skew was just corrected) is retried at once;
 * `auth` and `rejected` are not retried. All but `rejected` and `stale` count towards opening the breaker.
 */
export type FailureKind = 'throttled' | 'server' | 'timeout' | 'network' | 'stale' | 'auth' | 'rejected';

export interface SinkFailure {
  readonly kind: FailureKind;
  readonly message: string;
}

/** One message on its way: what the sink gets for each attempt. */
export class DeliveryJob {
  /** Attempt number, from 1; a report for an older attempt is ignored. */
  attempt = 0;
  /** When the current attempt started (ms, monotonic); 0 while none is running. */
  attemptStart = 0;
  /** The sink's handle on the running attempt (a request, say), for `abort`. */
  handle: unknown = undefined;
  lastFailure: SinkFailure | null = null;
  /** The time limit of the running attempt, while one runs. */
  limit: AttemptLimit | null = null;

  constructor(
    readonly msg: PublishMessage,
    readonly done: PublishCallback,
    readonly bytes: number,
    /** When the message was accepted (ms, monotonic). */
    readonly start: number,
    /** When it must be finished (ms, monotonic). */
    readonly deadline: number,
  ) {}
}

/** When a running attempt runs out of time; `job` is cleared when the attempt ends before. */
class AttemptLimit {
  constructor(
    public job: DeliveryJob | null,
    readonly deadline: number,
  ) {}
}

const attemptEnded = (limit: AttemptLimit): boolean => limit.job === null;

export interface AttemptListener {
  /** Reports the end of attempt number `attempt` of `job`: `null` when the sink accepted the message. */
  settle(job: DeliveryJob, attempt: number, failure: SinkFailure | null): void;
}

export interface Sink {
  readonly type: string;
  /** Starts one attempt; reports it exactly once through `listener.settle` unless aborted first. */
  start(job: DeliveryJob, listener: AttemptListener): void;
  /** The attempt ran out of time: stop it (its report, if any, is ignored). */
  abort(job: DeliveryJob): void;
  /** Releases connections; called once nothing is in progress. */
  close(): Promise<void>;
}

export interface DeliveryDeps {
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
}

type Outcome = 'ok' | 'failed' | 'rejected' | 'queue_full' | 'breaker_open' | 'closed';

const RETRIED: Record<FailureKind, boolean> = {
  throttled: true,
  server: true,
  timeout: true,
  network: true,
  stale: true,
  auth: false,
  rejected: false,
};

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Delivery implements Publisher, AttemptListener {
  readonly type: string;
  private readonly breaker: CircuitBreaker;
  /** Messages waiting for a slot, failed when their deadline passes first. */
  private readonly queue: DeadlineQueue<DeliveryJob>;
  private queueBytes = 0;
  /** Messages taken from the queue and not yet finished (attempting or waiting to retry). */
  private active = 0;
  /** Running attempts, aborted when their time runs out. */
  private readonly attempting: DeadlineQueue<AttemptLimit>;
  private closed = false;
  private pumping = false;
  private idle?: () => void;
  private readonly retryFn = (job: DeliveryJob) => this.retry(job);
  private readonly outcomes: Record<Outcome, number> = {
    ok: 0,
    failed: 0,
    rejected: 0,
    queue_full: 0,
    breaker_open: 0,
    closed: 0,
  };
  private readonly failures: Record<FailureKind, number> = {
    throttled: 0,
    server: 0,
    timeout: 0,
    network: 0,
    stale: 0,
    auth: 0,
    rejected: 0,
  };
  private retries = 0;
  private readonly latency: FastHistogram;
  private readonly log: Logger;
  private readonly caps: CapReporter;

  constructor(
    private readonly sink: Sink,
    private readonly opts: DeliveryConfig,
    deps: DeliveryDeps,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.type = sink.type;
    this.log = deps.log;
    this.caps = deps.caps;
    this.breaker = new CircuitBreaker(opts.breaker);
    // Time limits closer together than this are enforced in one go.
    const resolutionMs = Math.max(
      5,
      Math.min(100, Math.floor(Math.min(opts.requestTimeoutMs, opts.deadlineMs) / 4)),
    );
    this.queue = new DeadlineQueue<DeliveryJob>({
      expire: (job) => this.expireQueued(job),
      now: this.now,
      resolutionMs,
    });
    this.attempting = new DeadlineQueue<AttemptLimit>({
      expire: (limit, now) => this.timeOut(limit.job as DeliveryJob, now),
      cancelled: attemptEnded,
      now: this.now,
      resolutionMs,
    });
    const r = deps.metrics;
    counterFrom(
      r,
      'cellgate_publish_total',
      'Messages the publisher finished, by outcome.',
      () => this.outcomes,
      'outcome',
    );
    counterFrom(
      r,
      'cellgate_publish_attempt_failures_total',
      'Failed publish attempts, by kind.',
      () => this.failures,
      'kind',
    );
    counterFrom(
      r,
      'cellgate_publish_retries_total',
      'Publish attempts that were retries.',
      () => this.retries,
    );
    gaugeFrom(
      r,
      'cellgate_publish_in_flight',
      'Messages being published (attempting or waiting to retry).',
      () => this.active,
    );
    gaugeFrom(r, 'cellgate_publish_queue_depth', 'Messages waiting for a free publish slot.', () =>
      this.queued(),
    );
    gaugeFrom(
      r,
      'cellgate_publish_queue_bytes',
      'Bytes of messages waiting for a free publish slot.',
      () => this.queueBytes,
    );
    gaugeFrom(
      r,
      'cellgate_publish_breaker_state',
      'Circuit breaker: 0 closed, 1 open (uplinks get 5.03 at once), 2 half-open (probing).',
      () => this.breaker.state(this.now()),
    );
    counterFrom(
      r,
      'cellgate_publish_breaker_opened_total',
      'Times the circuit breaker opened.',
      () => this.breaker.opened,
    );
    this.latency = new FastHistogram(
      r,
      'cellgate_publish_sink_seconds',
      'Time from a message entering the publisher until the sink accepted it, queue wait and retries included.',
      LATENCY_BUCKETS,
    );
  }

  ready(): boolean {
    return !this.closed && this.breaker.state(this.now()) !== BreakerState.Open;
  }

  /** Messages waiting for a slot. */
  queued(): number {
    return this.queue.length;
  }

  /** Messages in progress (attempting or waiting to retry). */
  inFlight(): number {
    return this.active;
  }

  publish(msg: PublishMessage, done: PublishCallback): void {
    if (this.closed) return this.refuse('closed', done, new PublishError('publisher is closed', 5));
    const now = this.now();
    const bytes = messageBody(msg).length;
    if (this.active < this.opts.concurrency && this.queued() === 0) {
      if (!this.breaker.allow(now)) return this.refuseOpen(done, now);
      this.active++;
      this.attempt(new DeliveryJob(msg, done, bytes, now, now + this.opts.deadlineMs), now);
      return;
    }
    if (this.breaker.state(now) === BreakerState.Open) return this.refuseOpen(done, now);
    const q = this.opts.queue;
    if (this.queued() >= q.maxEntries || this.queueBytes + bytes > q.maxBytes) {
      this.caps.hit('publish_queue');
      return this.refuse('queue_full', done, new PublishError(`${this.type} publish queue is full`, 1));
    }
    this.queue.add(new DeliveryJob(msg, done, bytes, now, now + this.opts.deadlineMs));
    this.queueBytes += bytes;
  }

  settle(job: DeliveryJob, attempt: number, failure: SinkFailure | null): void {
    if (attempt !== job.attempt || job.attemptStart === 0) return;
    job.attemptStart = 0;
    job.handle = undefined;
    if (job.limit !== null) {
      job.limit.job = null;
      job.limit = null;
      this.attempting.noteCancelled();
    }
    const now = this.now();
    if (failure === null) {
      this.breaker.success();
      this.latency.observe((now - job.start) / 1000);
      return this.finish(job, 'ok', null);
    }
    this.failures[failure.kind]++;
    job.lastFailure = failure;
    if (failure.kind === 'rejected') {
      this.breaker.success();
      return this.finish(job, 'rejected', this.failedError(job, now, true));
    }
    if (failure.kind !== 'stale' && this.breaker.failure(now)) {
      this.onBreakerOpen(now);
      return this.finish(
        job,
        'failed',
        new PublishError(this.breakerMessage(), this.breaker.retryAfterSeconds(now)),
      );
    }
    if (!RETRIED[failure.kind] || job.attempt >= this.opts.retry.maxAttempts) {
      return this.finish(job, 'failed', this.failedError(job, now));
    }
    const delay =
      failure.kind === 'stale'
        ? 0
        : backoffDelay(job.attempt, this.opts.retry.baseDelayMs, this.opts.retry.maxDelayMs);
    if (now + delay >= job.deadline) return this.finish(job, 'failed', this.failedError(job, now));
    if (delay === 0) this.retry(job);
    else setTimeout(this.retryFn, delay, job);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.active > 0 || this.queued() > 0) await new Promise<void>((r) => (this.idle = r));
    this.queue.clear();
    this.attempting.clear();
    await this.sink.close();
  }

  private retry(job: DeliveryJob): void {
    const now = this.now();
    const state = this.breaker.state(now);
    if (state === BreakerState.Open || (state === BreakerState.HalfOpen && !this.breaker.allow(now))) {
      return this.finish(
        job,
        'failed',
        new PublishError(this.breakerMessage(), this.breaker.retryAfterSeconds(now)),
      );
    }
    this.retries++;
    this.attempt(job, now);
  }

  private attempt(job: DeliveryJob, now: number): void {
    job.attempt++;
    job.attemptStart = now;
    job.limit = new AttemptLimit(job, Math.min(now + this.opts.requestTimeoutMs, job.deadline));
    this.attempting.add(job.limit);
    this.sink.start(job, this);
  }

  private finish(job: DeliveryJob, outcome: Outcome, err: PublishError | null): void {
    this.outcomes[outcome]++;
    this.active--;
    this.pump();
    job.done(err);
  }

  /** Starts queued messages while there are free slots. */
  private pump(): void {
    // A sink may settle synchronously, which finishes a job and calls pump again: the outer loop goes on.
    if (this.pumping) return;
    this.pumping = true;
    while (this.active < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift() as DeliveryJob;
      this.queueBytes -= job.bytes;
      const now = this.now();
      if (now >= job.deadline) {
        this.expire(job);
        continue;
      }
      if (!this.breaker.allow(now)) {
        this.outcomes.breaker_open++;
        job.done(new PublishError(this.breakerMessage(), this.breaker.retryAfterSeconds(now)));
        continue;
      }
      this.active++;
      this.attempt(job, now);
    }
    this.pumping = false;
    if (this.closed && this.idle && this.active === 0 && this.queued() === 0) this.idle();
  }

  /** An attempt ran past its time limit: it is aborted and counts as a timeout. */
  private timeOut(job: DeliveryJob, now: number): void {
    job.limit = null;
    this.sink.abort(job);
    this.settle(job, job.attempt, {
      kind: 'timeout',
      message: `no answer within ${Math.round(now - job.attemptStart)} ms`,
    });
  }

  /** A queued message's deadline passed before it could be tried. */
  private expireQueued(job: DeliveryJob): void {
    this.queueBytes -= job.bytes;
    this.expire(job);
    if (this.closed && this.idle && this.active === 0 && this.queued() === 0) this.idle();
  }

  /** A queued message ran out of time before it could be tried. */
  private expire(job: DeliveryJob): void {
    this.outcomes.failed++;
    job.done(new PublishError(`${this.type} publish timed out waiting in the queue`, 1));
  }

  /** The breaker just opened: answer the queue at once instead of letting it wait. */
  private onBreakerOpen(now: number): void {
    const retryAfter = this.breaker.retryAfterSeconds(now);
    this.log.warn(
      { sink: this.type, retryAfterSeconds: retryAfter },
      `${this.type} publisher: circuit breaker open after repeated failures`,
    );
    for (const job of this.queue.drain()) {
      this.queueBytes -= job.bytes;
      this.outcomes.breaker_open++;
      job.done(new PublishError(this.breakerMessage(), retryAfter));
    }
  }

  private refuseOpen(done: PublishCallback, now: number): void {
    this.refuse(
      'breaker_open',
      done,
      new PublishError(this.breakerMessage(), this.breaker.retryAfterSeconds(now)),
    );
  }

  private refuse(outcome: Outcome, done: PublishCallback, err: PublishError): void {
    this.outcomes[outcome]++;
    done(err);
  }

  private breakerMessage(): string {
    return `${this.type} publisher is failing; circuit breaker open`;
  }

  private failedError(job: DeliveryJob, now: number, permanent = false): PublishError {
    const f = job.lastFailure;
    const what = f ? `${f.kind}: ${f.message}` : 'unknown failure';
    const retryAfter =
      this.breaker.state(now) === BreakerState.Closed
        ? Math.ceil(this.opts.breaker.openMs / 1000)
        : this.breaker.retryAfterSeconds(now);
    return new PublishError(
      `${this.type} publish failed after ${job.attempt} attempt(s): ${what}`,
      retryAfter,
      { permanent },
    );
  }
}
