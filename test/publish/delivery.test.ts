import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/publish/backoff.js';
import { BreakerState, CircuitBreaker } from '../../src/publish/breaker.js';
import {
  Delivery,
  type AttemptListener,
  type DeliveryJob,
  type Sink,
  type SinkFailure,
} from '../../src/publish/delivery.js';
import { delivery, deps, message, metricValue, publish, sleep } from './helpers.js';

/** A sink the test drives: it records attempts and settles them when told (or by a script). */
class ScriptedSink implements Sink {
  readonly type = 'scripted';
  readonly started: { job: DeliveryJob; attempt: number }[] = [];
  readonly aborted: DeliveryJob[] = [];
  listener?: AttemptListener;
  closed = false;
  constructor(private readonly script?: (job: DeliveryJob, attempt: number) => SinkFailure | null | 'hold') {}

  start(job: DeliveryJob, listener: AttemptListener): void {
    this.listener = listener;
    this.started.push({ job, attempt: job.attempt });
    const r = this.script ? this.script(job, job.attempt) : 'hold';
    if (r !== 'hold') listener.settle(job, job.attempt, r);
  }

  settle(i: number, failure: SinkFailure | null = null): void {
    const s = this.started[i];
    this.listener!.settle(s.job, s.attempt, failure);
  }

  abort(job: DeliveryJob): void {
    this.aborted.push(job);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

const throttled: SinkFailure = { kind: 'throttled', message: 'HTTP 429 ThrottlingException' };
const server: SinkFailure = { kind: 'server', message: 'HTTP 503' };

describe('backoff', () => {
  it('stays within [0, min(max, base·2^(n-1))]', () => {
    expect(backoffDelay(1, 100, 1000, () => 0)).toBe(0);
    expect(backoffDelay(1, 100, 1000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 1000, () => 0.999)).toBe(399);
    expect(backoffDelay(10, 100, 1000, () => 0.999)).toBe(999);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4, 100, 1000);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(800);
      seen.add(Math.floor(d / 100));
    }
    expect(seen.size).toBeGreaterThan(4); // jittered, not constant
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive failures, probes once, closes on success', () => {
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, maxOpenMs: 4000 });
    expect(b.failure(0)).toBe(false);
    b.success(); // resets the count
    expect(b.failure(1)).toBe(false);
    expect(b.failure(2)).toBe(false);
    expect(b.failure(3)).toBe(true);
    expect(b.state(500)).toBe(BreakerState.Open);
    expect(b.allow(500)).toBe(false);
    expect(b.retryAfterSeconds(500)).toBe(1);
    expect(b.state(1003)).toBe(BreakerState.HalfOpen);
    expect(b.allow(1003)).toBe(true); // the probe
    expect(b.allow(1004)).toBe(false); // only one
    b.success();
    expect(b.state(1005)).toBe(BreakerState.Closed);
    expect(b.opened).toBe(1);
  });

  it('doubles the open period after a failed probe, up to the maximum', () => {
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 1000, maxOpenMs: 3000 });
    b.failure(0);
    expect(b.allow(1000)).toBe(true);
    expect(b.failure(1000)).toBe(true);
    expect(b.state(2999)).toBe(BreakerState.Open);
    expect(b.retryAfterSeconds(1000)).toBe(2);
    expect(b.allow(3000)).toBe(true);
    b.failure(3000);
    expect(b.retryAfterSeconds(3000)).toBe(3); // capped at maxOpenMs
  });
});

describe('Delivery', () => {
  it('keeps at most `concurrency` messages in progress and starts queued ones in order', async () => {
    const sink = new ScriptedSink();
    const d = new Delivery(sink, delivery({ concurrency: 2 }), deps());
    const results: (string | null)[] = [];
    for (let i = 0; i < 5; i++)
      d.publish(message(`m${i}`), (err) => results.push(err ? err.message : `m${i}`));
    expect(sink.started.map((s) => s.job.msg.id)).toEqual(['m0', 'm1']);
    expect(d.queued()).toBe(3);
    sink.settle(1);
    expect(sink.started.map((s) => s.job.msg.id)).toEqual(['m0', 'm1', 'm2']);
    sink.settle(0);
    sink.settle(2);
    sink.settle(3);
    sink.settle(4);
    expect(results).toEqual(['m1', 'm0', 'm2', 'm3', 'm4']);
    expect(d.inFlight()).toBe(0);
    await d.close();
    expect(sink.closed).toBe(true);
  });

  it('refuses with 5.03 when the queue is full, in entries or in bytes, and reports the cap', async () => {
    const sink = new ScriptedSink();
    const dp = deps();
    const d = new Delivery(
      sink,
      delivery({ concurrency: 1, queue: { maxEntries: 1, maxBytes: 1 << 20 } }),
      dp,
    );
    const errs: (number | null)[] = [];
    for (let i = 0; i < 3; i++) d.publish(message(`m${i}`), (e) => errs.push(e ? e.retryAfterSeconds : null));
    expect(errs).toEqual([1]);
    const bytesCapped = new Delivery(
      new ScriptedSink(),
      delivery({ concurrency: 1, queue: { maxEntries: 100, maxBytes: 10 } }),
      deps(),
    );
    const e2: unknown[] = [];
    bytesCapped.publish(message('a'), (e) => e2.push(e));
    bytesCapped.publish(message('b'), (e) => e2.push(e));
    expect(e2).toHaveLength(1);
    expect(String(e2[0])).toMatch(/queue is full/);
    expect(await metricValue(dp.metrics, 'cellgate_cap_hits_total', { cap: 'publish_queue' })).toBe(1);
    expect(await metricValue(dp.metrics, 'cellgate_publish_total', { outcome: 'queue_full' })).toBe(1);
  });

  it('retries throttling with backoff and succeeds', async () => {
    const sink = new ScriptedSink((_job, attempt) => (attempt < 3 ? throttled : null));
    const dp = deps();
    const d = new Delivery(sink, delivery(), dp);
    expect(await publish(d, message('m'))).toBeNull();
    expect(sink.started.map((s) => s.attempt)).toEqual([1, 2, 3]);
    expect(await metricValue(dp.metrics, 'cellgate_publish_retries_total')).toBe(2);
    expect(
      await metricValue(dp.metrics, 'cellgate_publish_attempt_failures_total', { kind: 'throttled' }),
    ).toBe(2);
    expect(await metricValue(dp.metrics, 'cellgate_publish_total', { outcome: 'ok' })).toBe(1);
  });

  it('gives up after maxAttempts and says why', async () => {
    const sink = new ScriptedSink(() => server);
    const d = new Delivery(
      sink,
      delivery({ breaker: { failureThreshold: 100, openMs: 1000, maxOpenMs: 1000 } }),
      deps(),
    );
    const err = await publish(d, message('m'));
    expect(err?.message).toMatch(/after 4 attempt\(s\): server: HTTP 503/);
    expect(err?.retryAfterSeconds).toBe(1);
    expect(err?.permanent).toBe(false);
    expect(sink.started).toHaveLength(4);
  });

  it('does not retry a message the sink rejected, and does not count it against the sink', async () => {
    const sink = new ScriptedSink(() => ({ kind: 'rejected', message: 'HTTP 413' }));
    const d = new Delivery(
      sink,
      delivery({ breaker: { failureThreshold: 1, openMs: 1000, maxOpenMs: 1000 } }),
      deps(),
    );
    const err = await publish(d, message('a'));
    expect(err?.message).toMatch(/rejected: HTTP 413/);
    expect(err?.permanent).toBe(true);
    expect((await publish(d, message('b')))?.message).toMatch(/rejected/);
    expect(sink.started).toHaveLength(2);
    expect(d.ready()).toBe(true);
  });

  it('aborts an attempt that runs out of time, retries, and ignores the late answer', async () => {
    const sink = new ScriptedSink((_job, attempt) => (attempt === 1 ? 'hold' : null));
    const d = new Delivery(sink, delivery({ requestTimeoutMs: 60 }), deps());
    const t0 = performance.now();
    expect(await publish(d, message('m'))).toBeNull();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    expect(sink.aborted).toHaveLength(1);
    expect(sink.started.map((s) => s.attempt)).toEqual([1, 2]);
    sink.settle(0, server); // the first attempt answers late: ignored, no second callback
  });

  it('fails a message at its deadline even while attempts hang', async () => {
    const sink = new ScriptedSink(() => 'hold');
    const d = new Delivery(sink, delivery({ requestTimeoutMs: 1000, deadlineMs: 100 }), deps());
    const t0 = performance.now();
    const err = await publish(d, message('m'));
    const took = performance.now() - t0;
    expect(err?.message).toMatch(/timeout/);
    expect(took).toBeGreaterThanOrEqual(95);
    expect(took).toBeLessThan(600);
  });

  it('fails queued messages whose deadline passed while waiting', async () => {
    const sink = new ScriptedSink(() => 'hold');
    const d = new Delivery(
      sink,
      delivery({ concurrency: 1, requestTimeoutMs: 5000, deadlineMs: 80 }),
      deps(),
    );
    const errs = await Promise.all([publish(d, message('a')), publish(d, message('b'))]);
    expect(errs[1]?.message).toMatch(/waiting in the queue/);
    expect(sink.started).toHaveLength(1);
  });

  it('opens the breaker on sustained failure: answers at once, probes, and closes again', async () => {
    let failing = true;
    const sink = new ScriptedSink(() => (failing ? server : null));
    const dp = deps();
    const d = new Delivery(
      sink,
      delivery({
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
        breaker: { failureThreshold: 3, openMs: 150, maxOpenMs: 1000 },
      }),
      dp,
    );
    for (let i = 0; i < 3; i++) await publish(d, message(`f${i}`));
    expect(d.ready()).toBe(false);
    expect(await metricValue(dp.metrics, 'cellgate_publish_breaker_state')).toBe(1);
    const started = sink.started.length;
    const refused = await publish(d, message('refused'));
    expect(refused?.message).toMatch(/circuit breaker open/);
    expect(refused?.retryAfterSeconds).toBe(1);
    expect(sink.started.length).toBe(started); // not even tried

    await sleep(170);
    failing = false;
    // Half-open: the first message is the probe; while it is out, others are refused.
    const heldSink = sink.started.length;
    const probe = publish(d, message('probe'));
    expect(sink.started.length).toBe(heldSink + 1);
    expect(await probe).toBeNull();
    expect(d.ready()).toBe(true);
    expect(await publish(d, message('after'))).toBeNull();
    expect(await metricValue(dp.metrics, 'cellgate_publish_breaker_opened_total')).toBe(1);
    expect(await metricValue(dp.metrics, 'cellgate_publish_total', { outcome: 'breaker_open' })).toBe(1);
  });

  it('answers the queue at once when the breaker opens', async () => {
    const sink = new ScriptedSink(() => 'hold');
    const d = new Delivery(
      sink,
      delivery({
        concurrency: 1,
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
        breaker: { failureThreshold: 1, openMs: 5000, maxOpenMs: 5000 },
      }),
      deps(),
    );
    const first = publish(d, message('a'));
    const queued = [publish(d, message('b')), publish(d, message('c'))];
    sink.settle(0, server);
    const errs = await Promise.all([first, ...queued]);
    expect(errs.every((e) => e !== null)).toBe(true);
    expect(errs[1]?.retryAfterSeconds).toBe(5);
    expect(sink.started).toHaveLength(1);
  });

  it('retries a stale connection at once without counting it against the sink', async () => {
    const sink = new ScriptedSink((_j, attempt) =>
      attempt === 1 ? { kind: 'stale', message: 'ECONNRESET' } : null,
    );
    const d = new Delivery(
      sink,
      delivery({ breaker: { failureThreshold: 1, openMs: 1000, maxOpenMs: 1000 } }),
      deps(),
    );
    expect(await publish(d, message('m'))).toBeNull();
    expect(d.ready()).toBe(true);
  });

  it('closes after settling what is in flight and refuses new messages', async () => {
    const sink = new ScriptedSink();
    const d = new Delivery(sink, delivery(), deps());
    const pending = publish(d, message('a'));
    const closing = d.close();
    expect((await publish(d, message('b')))?.message).toMatch(/closed/);
    expect(sink.closed).toBe(false);
    sink.settle(0);
    expect(await pending).toBeNull();
    await closing;
    expect(sink.closed).toBe(true);
  });
});
