/**
 * The sandbox pool: worker threads that run payload-formatter scripts and isolated codec plugins, so a
 * script that throws, loops forever or eats memory costs one worker restart, never the gateway.
 *
 * Messages queue in the gateway thread and go to a worker in batches: one batch per worker at a time, with
 * the messages that arrived in the same event-loop turn (or within `batchDelayMs`), so batches grow with the
 * load and the gateway thread pays a few microseconds per message, not one postMessage each. Each worker has
 * a JS heap limit (`resourceLimits`). A call that runs longer than the time limit is
 * found through shared progress counters and its worker is terminated; the messages of its batch that were
 * not at fault go to the next worker, the culprit fails with reason `timeout` (or `memory`). A codec that
 * takes down workers three times within a minute is disabled for a minute.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Fifo } from '../../collections/fifo.js';
import type { SandboxConfig } from '../../config/codecs.js';
import type { Logger } from '../../ops/logger.js';
import { counterFrom, gaugeFrom, type CapReporter, type MetricsRegistry } from '../../ops/metrics.js';
import type {
  Codec,
  DecodeOutput,
  DownlinkContext,
  EncodeOutput,
  ScriptSandbox,
  ScriptSource,
  UplinkContext,
} from '../codec.js';
import { DecodeError } from '../codec.js';
import { CodecFailure, type FailureReason } from '../failure.js';
import { MAX_JSON_DEPTH } from '../json-text.js';
import {
  OP_DECODE,
  OP_ENCODE,
  PROGRESS_RUNNING,
  PROGRESS_STARTED,
  STATUS_ERROR,
  STATUS_EXCEPTION,
  STATUS_INVALID,
  STATUS_OK,
  STATUS_TIMEOUT,
  type BatchReply,
  type EncodedValue,
  type LoadReply,
  type LoadRequest,
  type WorkerInit,
  type WorkerReply,
} from './protocol.js';
import { sandboxWorkerSource } from './worker.js';

/** A codec that took down workers this often within `STRIKE_WINDOW_MS` is disabled for that long. */
const STRIKES = 3;
const STRIKE_WINDOW_MS = 60_000;
/** Loading a module plugin (import and create) may take this long. */
const LOAD_TIMEOUT_MS = 10_000;
/** Lines of worker stdout/stderr logged per second at most. */
const OUTPUT_LINES_PER_SECOND = 20;

export interface SandboxOptions {
  readonly config: SandboxConfig;
  /** Longest a message may wait and run, in total. */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly caps?: CapReporter;
  readonly metrics?: MetricsRegistry;
}

/** A codec loaded into every worker. */
interface Registration {
  readonly id: number;
  readonly name: string;
  readonly load: LoadRequest;
  readonly module: boolean;
  encode: boolean;
  contentFormats?: readonly number[];
  closed: boolean;
  kills: number[];
  disabledUntil: number;
}

/** Who waits for a message's outcome: a promise's resolve/reject, or the registry's pending entry. */
export interface SandboxCallSink {
  resolved(value: DecodeOutput & EncodeOutput): void;
  rejected(err: Error): void;
}

/** One message for a worker and who waits for its outcome. */
class SandboxCall {
  enqueued = performance.now();
  attempts = 0;
  constructor(
    readonly reg: Registration,
    readonly op: number,
    readonly bytes: Buffer | null,
    readonly data: unknown,
    readonly ctx: UplinkContext | DownlinkContext,
    private readonly sink: SandboxCallSink,
  ) {}

  private resolve(value: DecodeOutput & EncodeOutput): void {
    this.sink.resolved(value);
  }

  private reject(err: Error): void {
    this.sink.rejected(err);
  }

  get size(): number {
    return this.bytes ? this.bytes.length : 0;
  }

  fail(reason: FailureReason, message: string): void {
    this.reject(new CodecFailure(reason, message));
  }

  settle(status: number, value: unknown, warnings: string[] | null): void {
    if (status === STATUS_OK) {
      if (this.op === OP_DECODE)
        this.resolve({ data: JSON.parse(value as string), warnings: warnings ?? undefined } as never);
      else {
        const e = value as EncodedValue;
        const bytes = Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength);
        this.resolve({ bytes, contentFormat: e.contentFormat } as never);
      }
    } else if (status === STATUS_ERROR) this.reject(new DecodeError(String(value)));
    else if (status === STATUS_INVALID) this.fail('invalid', String(value));
    else if (status === STATUS_TIMEOUT) this.fail('timeout', String(value));
    else if (status === STATUS_EXCEPTION) this.fail('exception', `codec fault: ${String(value)}`);
    else this.fail('unavailable', String(value));
  }
}

interface PendingLoad {
  readonly msg: LoadRequest;
  readonly done: (reply: LoadReply) => void;
}

/** One worker thread and what it is doing. */
class WorkerSlot {
  worker!: Worker;
  progress!: Int32Array;
  ready = false;
  /** The batch in the worker, or the load it is doing. */
  batch: SandboxCall[] | null = null;
  load: PendingLoad | null = null;
  readonly loads = new Fifo<PendingLoad>(4);
  /** `started` counter value when the batch went out, and at the last watchdog look. */
  base = 0;
  seen = -1;
  stalls = 0;
  killReason: FailureReason | null = null;
  errorReason: FailureReason | null = null;

  constructor(readonly index: number) {}

  get busy(): boolean {
    return this.batch !== null || this.load !== null;
  }
}

export class SandboxPool implements ScriptSandbox {
  private readonly slots: WorkerSlot[] = [];
  private readonly registrations = new Map<number, Registration>();
  private nextId = 1;
  private readonly queue = new Fifo<SandboxCall>(1024);
  private queuedBytes = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushImmediate: NodeJS.Immediate | null = null;
  private closed = false;
  private watchdog: NodeJS.Timeout | null = null;
  private readonly source = sandboxWorkerSource();
  private readonly restarts: Record<'timeout' | 'memory' | 'crashed', number> = {
    timeout: 0,
    memory: 0,
    crashed: 0,
  };
  private outputBudget = OUTPUT_LINES_PER_SECOND;
  private outputWindow = 0;
  private readonly flushBound = (): void => this.flush();
  /** Watchdog period: a quarter of the per-call time limit. */
  private readonly tick: number;

  constructor(private readonly opts: SandboxOptions) {
    this.tick = Math.max(5, Math.floor(opts.config.callTimeoutMs / 4));
    const m = opts.metrics;
    if (m) {
      counterFrom(
        m,
        'cellgate_codec_sandbox_restarts_total',
        'Sandbox worker threads restarted, by why the last one ended.',
        () => this.restarts,
        'reason',
      );
      gaugeFrom(
        m,
        'cellgate_codec_sandbox_queued',
        'Messages waiting for a sandbox worker.',
        () => this.queued,
      );
    }
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Workers started so far (they start on the first load). */
  get workers(): number {
    return this.slots.length;
  }

  loadScript(script: ScriptSource): Promise<Codec> {
    return this.register(script.name, false, (id) => ({
      t: 'load',
      id,
      kind: 'script',
      name: script.name,
      source: script.source,
      filename: script.filename,
      fPort: script.fPort,
      variables: script.variables,
    }));
  }

  /** Loads a codec plugin module into the workers; `specifier` is a file: URL or a package name. */
  loadModule(
    name: string,
    specifier: string,
    options: Readonly<Record<string, unknown>>,
    baseDir: string,
  ): Promise<Codec> {
    return this.register(name, true, (id) => ({
      t: 'load',
      id,
      kind: 'module',
      name,
      specifier,
      options,
      baseDir,
    }));
  }

  private async register(
    name: string,
    module: boolean,
    request: (id: number) => LoadRequest,
  ): Promise<Codec> {
    if (this.closed) throw new CodecFailure('unavailable', 'the sandbox is closed');
    this.start();
    const id = this.nextId++;
    const reg: Registration = {
      id,
      name,
      load: request(id),
      module,
      encode: false,
      closed: false,
      kills: [],
      disabledUntil: 0,
    };
    const replies = await Promise.all(this.slots.map((slot) => this.loadInto(slot, reg.load)));
    const failed = replies.find((r) => r.error !== null);
    if (failed) {
      for (const slot of this.slots) if (slot.ready) slot.worker.postMessage({ t: 'unload', id });
      throw new Error(failed.error ?? 'load failed');
    }
    reg.encode = replies.every((r) => r.encode);
    reg.contentFormats = replies[0]?.contentFormats;
    this.registrations.set(id, reg);
    return new SandboxedCodec(this, reg);
  }

  /** Stops routing to a codec and drops it from the workers. */
  unregister(reg: Registration): void {
    reg.closed = true;
    this.registrations.delete(reg.id);
    for (const slot of this.slots) if (slot.ready) slot.worker.postMessage({ t: 'unload', id: reg.id });
  }

  private loadInto(slot: WorkerSlot, msg: LoadRequest): Promise<LoadReply> {
    return new Promise((done) => {
      slot.loads.push({ msg, done });
      this.dispatch(slot);
    });
  }

  private start(): void {
    if (this.slots.length > 0) return;
    for (let i = 0; i < this.opts.config.workers; i++) {
      const slot = new WorkerSlot(i);
      this.slots.push(slot);
      this.spawn(slot);
    }
    this.watchdog = setInterval(() => this.watch(), this.tick);
    this.watchdog.unref();
  }

  private spawn(slot: WorkerSlot): void {
    const progress = new SharedArrayBuffer(8);
    const cfg = this.opts.config;
    const init: WorkerInit = {
      progress,
      maxOutputBytes: cfg.maxOutputBytes,
      maxAllocationBytes: cfg.maxAllocationBytes,
      maxDepth: MAX_JSON_DEPTH,
      asyncTimeoutMs: this.opts.timeoutMs,
      loadTimeoutMs: Math.max(LOAD_TIMEOUT_MS, this.opts.timeoutMs),
    };
    const worker = new Worker(this.source, {
      eval: true,
      workerData: init,
      // Scripts and plugins see no environment variables (no credentials); they get settings as options.
      env: {},
      stdout: true,
      stderr: true,
      resourceLimits: {
        maxOldGenerationSizeMb: cfg.maxHeapMb,
        maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(cfg.maxHeapMb / 4))),
        stackSizeMb: 4,
      },
    });
    slot.worker = worker;
    slot.progress = new Int32Array(progress);
    slot.ready = true;
    slot.killReason = null;
    slot.errorReason = null;
    worker.on('message', (m: WorkerReply) => this.onReply(slot, worker, m));
    worker.on('error', (err: Error & { code?: string }) => {
      if (slot.worker !== worker) return;
      slot.errorReason = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'crashed';
      this.opts.log.warn({ worker: slot.index, err: err.message }, 'sandbox worker failed');
    });
    worker.on('exit', () => this.onExit(slot, worker));
    worker.stdout.on('data', (chunk: Buffer) => this.output(slot, chunk));
    worker.stderr.on('data', (chunk: Buffer) => this.output(slot, chunk));
    worker.unref();
  }

  private output(slot: WorkerSlot, chunk: Buffer): void {
    const now = Date.now();
    if (now - this.outputWindow >= 1000) {
      this.outputWindow = now;
      this.outputBudget = OUTPUT_LINES_PER_SECOND;
    }
    if (this.outputBudget <= 0) return;
    this.outputBudget--;
    this.opts.log.info(
      { worker: slot.index, output: chunk.toString('utf8', 0, 2000).trimEnd() },
      'codec plugin output',
    );
  }

  submit(call: SandboxCall): void {
    const reg = call.reg;
    if (this.closed || reg.closed) {
      call.fail('unavailable', `codec ${reg.name} is closed`);
      return;
    }
    if (reg.disabledUntil > 0) {
      const left = reg.disabledUntil - Date.now();
      if (left > 0) {
        call.fail(
          'unavailable',
          `codec ${reg.name} is disabled for ${Math.ceil(left / 1000)} s after crashing its worker`,
        );
        return;
      }
      reg.disabledUntil = 0;
    }
    const cfg = this.opts.config;
    if (this.queued >= cfg.maxQueue || this.queuedBytes + call.size > cfg.maxQueueBytes) {
      this.opts.caps?.hit('codec_sandbox_queue');
      call.fail('overload', 'the codec sandbox queue is full');
      return;
    }
    this.queue.push(call);
    this.queuedBytes += call.size;
    this.schedule();
  }

  /**
   * True when the queue should go to a worker now: a full batch is waiting, or the oldest message has waited
   * `batchDelayMs` for company.
   */
  private due(): boolean {
    const n = this.queued;
    if (n === 0) return false;
    if (n >= this.opts.config.maxBatch) return true;
    return performance.now() - (this.queue.peek() as SandboxCall).enqueued >= this.opts.config.batchDelayMs;
  }

  /** Arranges a flush: at once (end of this event-loop turn) when due, else when the oldest message is. */
  private schedule(): void {
    if (this.flushImmediate || this.queued === 0) return;
    const wait =
      this.opts.config.batchDelayMs - (performance.now() - (this.queue.peek() as SandboxCall).enqueued);
    if (wait <= 0 || this.queued >= this.opts.config.maxBatch) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.flushImmediate = setImmediate(this.flushBound);
    } else if (!this.flushTimer) this.flushTimer = setTimeout(this.flushBound, wait);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.flushImmediate = null;
    // The timer fired because the oldest message is due (timers may fire a little early by this clock).
    for (const slot of this.slots) this.dispatch(slot, true);
    // Messages left over wait for a worker to answer; that dispatches them.
  }

  /** Gives an idle worker its next load, or (when due, or `now`) a batch from the queue. */
  private dispatch(slot: WorkerSlot, now = false): void {
    if (!slot.ready || slot.busy) return;
    const load = slot.loads.shift();
    if (load) {
      slot.load = load;
      this.arm(slot);
      slot.worker.ref();
      slot.worker.postMessage(load.msg);
      return;
    }
    if (this.queued === 0 || (!now && !this.due())) return;
    const max = this.opts.config.maxBatch;
    const oldest = performance.now() - this.opts.timeoutMs;
    const calls: SandboxCall[] = [];
    let total = 0;
    let withCtx = false;
    let withData = false;
    while (this.queue.length > 0 && calls.length < max) {
      const call = this.queue.shift() as SandboxCall;
      this.queuedBytes -= call.size;
      // Nobody waits for an answer past the time limit: do not spend a worker on it.
      if (call.enqueued < oldest)
        call.fail('timeout', `waited more than ${this.opts.timeoutMs} ms for a worker`);
      else if (call.reg.closed) call.fail('unavailable', `codec ${call.reg.name} is closed`);
      else {
        calls.push(call);
        total += call.size;
        if (call.reg.module) withCtx = true;
        if (call.op === OP_ENCODE) withData = true;
      }
    }
    if (calls.length === 0) return;
    const n = calls.length;
    const ids = new Int32Array(n);
    const ops = new Uint8Array(n);
    const ends = new Int32Array(n);
    const times = new Float64Array(n);
    const bytes = new Uint8Array(total);
    const ctxs: unknown[] | null = withCtx ? new Array<unknown>(n).fill(null) : null;
    const data: unknown[] | null = withData ? new Array<unknown>(n).fill(null) : null;
    let off = 0;
    for (let i = 0; i < n; i++) {
      const call = calls[i];
      ids[i] = call.reg.id;
      ops[i] = call.op;
      if (call.bytes) {
        bytes.set(call.bytes, off);
        off += call.bytes.length;
      }
      ends[i] = off;
      times[i] = (call.ctx as UplinkContext).receivedAt ?? Date.now();
      if (ctxs && call.reg.module) ctxs[i] = call.ctx;
      if (data && call.op === OP_ENCODE) data[i] = call.data;
    }
    slot.batch = calls;
    this.arm(slot);
    slot.worker.ref();
    slot.worker.postMessage({ t: 'batch', n, ids, ops, ends, bytes, times, ctxs, data }, [
      ids.buffer,
      ops.buffer,
      ends.buffer,
      times.buffer,
      bytes.buffer,
    ]);
  }

  private arm(slot: WorkerSlot): void {
    slot.base = Atomics.load(slot.progress, PROGRESS_STARTED);
    slot.seen = -1;
    slot.stalls = 0;
  }

  private onReply(slot: WorkerSlot, worker: Worker, m: WorkerReply): void {
    if (slot.worker !== worker) return;
    if (m.t === 'loaded') {
      const load = slot.load;
      slot.load = null;
      load?.done(m);
    } else {
      const calls = slot.batch;
      slot.batch = null;
      if (calls) this.deliver(calls, m);
    }
    this.dispatch(slot);
    if (this.queued > 0) for (const s of this.slots) this.dispatch(s);
    this.schedule();
    // An idle worker does not keep the process alive.
    if (!slot.busy) worker.unref();
  }

  private deliver(calls: SandboxCall[], m: BatchReply): void {
    for (let i = 0; i < calls.length; i++) calls[i].settle(m.status[i], m.values[i], m.warnings[i]);
  }

  /**
   * Runs every quarter of `callTimeoutMs`: ends a worker whose current call has been running for three looks
   * (75-100% of `callTimeoutMs`), or that has not answered a batch or load long after its own time limits.
   */
  private watch(): void {
    const tick = this.tick;
    const opts = this.opts;
    const batchChecks = Math.ceil((opts.timeoutMs + opts.config.callTimeoutMs) / tick) + 1;
    const loadChecks =
      Math.ceil((Math.max(LOAD_TIMEOUT_MS, opts.timeoutMs) + opts.config.callTimeoutMs) / tick) + 1;
    for (const slot of this.slots) {
      if (!slot.ready || !slot.busy) continue;
      const started = Atomics.load(slot.progress, PROGRESS_STARTED);
      const running = Atomics.load(slot.progress, PROGRESS_RUNNING) === 1;
      if (started !== slot.seen) {
        slot.seen = started;
        slot.stalls = 0;
        continue;
      }
      slot.stalls++;
      if ((running && slot.stalls >= 3) || slot.stalls >= (slot.load ? loadChecks : batchChecks))
        this.kill(slot, 'timeout');
    }
  }

  private kill(slot: WorkerSlot, reason: FailureReason): void {
    slot.killReason = reason;
    slot.ready = false;
    void slot.worker.terminate();
  }

  private onExit(slot: WorkerSlot, worker: Worker): void {
    if (slot.worker !== worker) return;
    slot.ready = false;
    const reason: 'timeout' | 'memory' | 'crashed' =
      slot.killReason === 'timeout' ? 'timeout' : slot.errorReason === 'memory' ? 'memory' : 'crashed';
    if (this.closed) {
      this.failSlot(slot, 'unavailable', 'the sandbox is closed');
      return;
    }
    this.restarts[reason]++;
    const started = Atomics.load(slot.progress, PROGRESS_STARTED) - slot.base;
    const running = Atomics.load(slot.progress, PROGRESS_RUNNING) === 1 || reason === 'memory';
    const what =
      reason === 'timeout'
        ? `ran longer than ${this.opts.config.callTimeoutMs} ms`
        : reason === 'memory'
          ? `went over the sandbox heap limit of ${this.opts.config.maxHeapMb} MiB`
          : 'crashed its sandbox worker';
    const calls = slot.batch;
    const load = slot.load;
    slot.batch = null;
    slot.load = null;
    let culprit: Registration | undefined;
    if (calls) {
      const at = running ? started - 1 : -1;
      const again: SandboxCall[] = [];
      for (let i = 0; i < calls.length; i++) {
        const call = calls[i];
        if (i === at) {
          culprit = call.reg;
          call.fail(reason, `codec ${call.reg.name} ${what}`);
        } else if (++call.attempts > 1)
          call.fail('crashed', `codec sandbox worker ended twice while this message waited`);
        else again.push(call);
      }
      this.requeue(again);
    }
    if (load) {
      culprit = this.registrations.get(load.msg.id);
      load.done({ t: 'loaded', id: load.msg.id, error: `the script ${what} while loading`, encode: false });
    }
    if (culprit) this.strike(culprit);
    this.opts.log.warn(
      {
        worker: slot.index,
        reason,
        codec: culprit?.name,
        requeued: calls ? calls.length - (culprit ? 1 : 0) : 0,
      },
      'sandbox worker ended; starting a new one',
    );
    // A fresh worker loads every codec again before it takes messages.
    this.spawn(slot);
    const reloads: PendingLoad[] = [];
    for (const reg of this.registrations.values())
      reloads.push({ msg: reg.load, done: (r) => this.reloaded(reg, r) });
    slot.loads.requeue(reloads);
    this.dispatch(slot);
  }

  /** A codec that no longer loads into a fresh worker is dropped (it would fail every message anyway). */
  private reloaded(reg: Registration, reply: LoadReply): void {
    if (reply.error === null) return;
    this.opts.log.error(
      { codec: reg.name, err: reply.error },
      'codec failed to load into a new sandbox worker',
    );
    this.unregister(reg);
  }

  private requeue(calls: SandboxCall[]): void {
    if (calls.length === 0) return;
    this.queue.requeue(calls);
    for (const j of calls) this.queuedBytes += j.size;
    this.schedule();
  }

  private strike(reg: Registration): void {
    const now = Date.now();
    reg.kills = reg.kills.filter((t) => now - t < STRIKE_WINDOW_MS);
    reg.kills.push(now);
    if (reg.kills.length >= STRIKES) {
      reg.disabledUntil = now + STRIKE_WINDOW_MS;
      reg.kills = [];
      this.opts.log.error(
        { codec: reg.name, seconds: STRIKE_WINDOW_MS / 1000 },
        'codec disabled: it ended its sandbox worker repeatedly',
      );
    }
  }

  private failSlot(slot: WorkerSlot, reason: FailureReason, message: string): void {
    for (const call of slot.batch ?? []) call.fail(reason, message);
    slot.batch = null;
    slot.load?.done({ t: 'loaded', id: slot.load.msg.id, error: message, encode: false });
    slot.load = null;
    for (const l of slot.loads.drain()) l.done({ t: 'loaded', id: l.msg.id, error: message, encode: false });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.flushImmediate) clearImmediate(this.flushImmediate);
    for (const call of this.queue.drain()) call.fail('unavailable', 'the sandbox is closed');
    this.queuedBytes = 0;
    await Promise.all(
      this.slots.map(async (slot) => {
        this.failSlot(slot, 'unavailable', 'the sandbox is closed');
        slot.ready = false;
        await slot.worker.terminate();
      }),
    );
  }
}

/**
 * A codec living in the sandbox workers. `decodeUplink` / `encodeDownlink` answer with promises (the Codec
 * interface); the registry uses `submit` with its own sink and saves a promise per message.
 */
export class SandboxedCodec implements Codec {
  readonly name: string;
  readonly encodeDownlink?: (data: unknown, ctx: DownlinkContext) => Promise<EncodeOutput>;
  readonly contentFormats?: readonly number[];

  constructor(
    private readonly pool: SandboxPool,
    private readonly reg: Registration,
  ) {
    this.name = reg.name;
    this.contentFormats = reg.contentFormats;
    if (reg.encode)
      this.encodeDownlink = (data, ctx) =>
        new Promise((resolved, rejected) => this.submit(OP_ENCODE, null, data, ctx, { resolved, rejected }));
  }

  decodeUplink(bytes: Buffer, ctx: UplinkContext): Promise<DecodeOutput> {
    return new Promise((resolved, rejected) =>
      this.submit(OP_DECODE, bytes, undefined, ctx, { resolved, rejected }),
    );
  }

  /** Queues a decode (`bytes`) or encode (`data`) whose outcome goes to `sink`. */
  submit(
    op: typeof OP_DECODE | typeof OP_ENCODE,
    bytes: Buffer | null,
    data: unknown,
    ctx: UplinkContext | DownlinkContext,
    sink: SandboxCallSink,
  ): void {
    this.pool.submit(new SandboxCall(this.reg, op, bytes, data, ctx, sink));
  }

  close(): void {
    this.pool.unregister(this.reg);
  }
}
