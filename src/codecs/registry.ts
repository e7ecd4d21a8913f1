/**
 * The codec registry: the gateway's UplinkDecoder and DownlinkEncoder. It resolves the codec names devices
 * use (built-ins, plugin modules), creates every codec the device list references ahead of time
 * (`prepare`, at start and on each device-registry reload) so `decode` picks synchronously, and runs codecs
 * with guards: a throw becomes a decode error, an asynchronous codec that does not answer within `timeoutMs`
 * becomes a time-out, a result without a JSON form is refused. Failures are counted by codec and reason.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ContentFormat } from '../coap/constants.js';
import { DeadlineQueue } from '../collections/deadline-queue.js';
import { BUILTIN_CODEC_NAMES, codecsSchema, type CodecsConfig, type CodecSpec } from '../config/codecs.js';
import type { Device } from '../devices/device.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { Logger } from '../ops/logger.js';
import { silentLogger } from '../ops/logger.js';
import {
  counterFromLabels,
  FastHistogramFamily,
  gaugeFrom,
  HistogramSeries,
  type CapReporter,
  type MetricsRegistry,
} from '../ops/metrics.js';
import {
  isPromiseLike,
  type Codec,
  type CodecEnv,
  type CodecPlugin,
  type DecodeOutput,
  type DecodeResult,
  type DownlinkContext,
  type DownlinkEncoder,
  type EncodeOutput,
  type EncodeResult,
  type ScriptSandbox,
  type UplinkContext,
  type UplinkDecoder,
} from './codec.js';
import {
  CodecFailure,
  FAILURE_REASONS,
  failureMessage,
  failureReason,
  type FailureReason,
} from './failure.js';
import { codecSource, loadPlugin, type CodecSource } from './plugins.js';
import { SandboxedCodec, SandboxPool, type SandboxCallSink } from './sandbox/pool.js';
import { OP_DECODE, OP_ENCODE } from './sandbox/protocol.js';
import { MAX_JSON_DEPTH } from './json-text.js';

/** Creating one codec (loading a .proto, compiling a script, a plugin's create()) may take this long. */
const CREATE_TIMEOUT_MS = 10_000;

export interface CodecRegistryOptions {
  /** The `codecs:` config section (defaults when absent). */
  readonly config?: CodecsConfig;
  /** Folder relative paths in codec options and plugin references resolve against (the config file's). */
  readonly baseDir: string;
  readonly metrics?: MetricsRegistry;
  readonly log?: Logger;
  readonly caps?: CapReporter;
}

export interface PrepareReport {
  /** Codec instances in use. */
  readonly codecs: number;
  /** Codecs that could not be created; their devices' uplinks are published with a decodeError. */
  readonly failed: readonly {
    readonly codec: string;
    readonly devices: readonly string[];
    readonly error: string;
  }[];
}

/** Decode latency buckets, seconds: 10 µs to 1 s. */
const LATENCY_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
];

/** Counters of one codec name, read at scrape time. */
class CodecStats {
  constructor(readonly latency: HistogramSeries) {}
  readonly decodeFailures = new Float64Array(FAILURE_REASONS.length);
  readonly encodeFailures = new Float64Array(FAILURE_REASONS.length);
}

/** One codec instance: a name with options. */
class Entry {
  codec: Codec | null = null;
  error: string | null = null;
  /** Results of in-process user plugins are checked for a JSON form before they reach the envelope. */
  check = false;
  /** Runs in the sandbox workers: always asynchronous. */
  sandboxed = false;
  readonly nothing: DecodeResult;

  constructor(
    readonly key: string,
    readonly name: string,
    readonly stats: CodecStats,
  ) {
    this.nothing = Object.freeze({ codec: name, data: null });
  }
}

/** The codecs one device uses: by path, else its own, else (null) the Content-Format default. */
interface DeviceCodecs {
  readonly codec: Entry | null;
  readonly paths: ReadonlyMap<string, Entry> | null;
}

const NO_CODECS: DeviceCodecs = { codec: null, paths: null };

type Result = DecodeResult | EncodeResult;

/** An asynchronous decode or encode in flight, in a FIFO ordered by deadline. */
class PendingCodecCall implements SandboxCallSink {
  done = false;

  constructor(
    private readonly owner: CodecRegistry,
    readonly entry: Entry,
    readonly encode: boolean,
    readonly t0: number,
    readonly deadline: number,
    readonly resolve: (r: Result) => void,
  ) {}

  resolved(value: DecodeOutput & EncodeOutput): void {
    this.owner.settled(this, value, null);
  }

  rejected(err: Error): void {
    this.owner.settled(this, null, err);
  }
}

function ignore(): void {}

const isDone = (p: PendingCodecCall): boolean => p.done;

function specName(spec: CodecSpec): string {
  return typeof spec === 'string' ? spec : spec.name;
}

function specOptions(spec: CodecSpec): Readonly<Record<string, unknown>> {
  return typeof spec === 'string' ? {} : (spec.options ?? {});
}

/** JSON with object keys sorted, so equal options give equal keys. */
function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/** Throws unless `v` has a JSON form within the nesting limit (checks in-process plugin results). */
function assertJsonable(v: unknown, depth: number, seen: Set<object>): void {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return;
    case 'object': {
      if (v === null) return;
      if (depth > MAX_JSON_DEPTH)
        throw new CodecFailure('invalid', `decoded data nests deeper than ${MAX_JSON_DEPTH}`);
      if (seen.has(v)) throw new CodecFailure('invalid', 'decoded data has a cycle');
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return;
      seen.add(v);
      if (Array.isArray(v)) for (const x of v) assertJsonable(x, depth + 1, seen);
      else for (const k in v) assertJsonable((v as Record<string, unknown>)[k], depth + 1, seen);
      seen.delete(v);
      return;
    }
    default:
      throw new CodecFailure('invalid', `decoded data holds a ${typeof v}, which has no JSON form`);
  }
}

/** `device a`, or `3 devices (a, b, c)` with the first five named, for log messages. */
function deviceList(ids: readonly string[]): string {
  if (ids.length === 1) return `device ${ids[0]}`;
  return `${ids.length} devices (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''})`;
}

export class CodecRegistry implements UplinkDecoder, DownlinkEncoder {
  private readonly config: CodecsConfig;
  private readonly baseDir: string;
  private readonly log: Logger;
  private readonly caps?: CapReporter;
  private readonly metrics?: MetricsRegistry;
  private readonly env: CodecEnv;

  private entries = new Map<string, Entry>();
  private byDevice = new WeakMap<Device, DeviceCodecs>();
  private readonly creating = new Map<string, Promise<Entry>>();
  private readonly plugins = new Map<string, Promise<CodecPlugin>>();
  private readonly stats = new Map<string, CodecStats>();
  private latency: FastHistogramFamily | null = null;
  private defaults: { raw: Entry; json: Entry; cbor: Entry; senml: Entry } | null = null;
  private pool: SandboxPool | null = null;
  private preparing: Promise<unknown> = Promise.resolve();
  private closed = false;

  // Asynchronous work in flight, failed by its deadline (one time limit for all) if no answer comes first.
  private readonly pending = new DeadlineQueue<PendingCodecCall>({
    expire: (p) => this.timedOut(p),
    cancelled: isDone,
    now: performance.now.bind(performance),
    keepAlive: true,
  });
  private inFlight = 0;

  constructor(opts: CodecRegistryOptions) {
    this.config = opts.config ?? codecsSchema.parse({});
    this.baseDir = opts.baseDir;
    this.log = opts.log ?? silentLogger();
    this.caps = opts.caps;
    this.metrics = opts.metrics;
    const sandbox: ScriptSandbox = { loadScript: (script) => this.sandbox().loadScript(script) };
    this.env = { baseDir: this.baseDir, sandbox };
    const m = opts.metrics;
    if (m) {
      counterFromLabels(
        m,
        'cellgate_codec_decode_failures_total',
        'Uplinks published with a decodeError, by codec and reason (error: the payload; exception: a plugin ' +
          'fault; invalid: no JSON form; timeout; memory; crashed; overload; unavailable).',
        ['codec', 'reason'],
        () => this.failureCounts(false),
      );
      counterFromLabels(
        m,
        'cellgate_codec_encode_failures_total',
        'Downlinks a codec could not encode, by codec and reason.',
        ['codec', 'reason'],
        () => this.failureCounts(true),
      );
      this.latency = new FastHistogramFamily(
        m,
        'cellgate_codec_decode_seconds',
        'Time from handing an uplink to its codec to the decoded result.',
        'codec',
        LATENCY_BUCKETS,
      );
      gaugeFrom(
        m,
        'cellgate_codec_pending',
        'Asynchronous decodes and encodes in flight.',
        () => this.inFlight,
      );
    }
  }

  /** Failure counts by codec and reason, for the metrics. */
  private *failureCounts(encode: boolean): Generator<readonly [readonly string[], number]> {
    for (const [name, s] of this.stats) {
      const counts = encode ? s.encodeFailures : s.decodeFailures;
      for (let i = 0; i < FAILURE_REASONS.length; i++) yield [[name, FAILURE_REASONS[i]], counts[i]];
    }
  }

  /** Built-in and configured codec names. */
  names(): { builtin: string[]; plugins: string[] } {
    return { builtin: [...BUILTIN_CODEC_NAMES], plugins: Object.keys(this.config.plugins) };
  }

  /** The plugin behind a name, loaded into this thread (not for isolated plugins). */
  plugin(name: string): Promise<CodecPlugin> {
    let p = this.plugins.get(name);
    if (!p) {
      const source = this.source(name);
      const loading = source ? loadPlugin(source) : Promise.reject(new Error(this.unknown(name)));
      // A module that failed to load is loaded again next time (the file may have been fixed).
      loading.catch(() => {
        if (this.plugins.get(name) === loading) this.plugins.delete(name);
      });
      this.plugins.set(name, loading);
      p = loading;
    }
    return p;
  }

  private source(name: string): CodecSource | undefined {
    return codecSource(name, this.config, this.baseDir);
  }

  private unknown(name: string): string {
    const plugins = Object.keys(this.config.plugins);
    return `unknown codec "${name}" (built-in: ${this.names().builtin.join(', ')}${
      plugins.length ? `; plugins: ${plugins.join(', ')}` : ''
    })`;
  }

  private sandbox(): SandboxPool {
    if (this.closed) throw new CodecFailure('unavailable', 'the codec registry is closed');
    this.pool ??= new SandboxPool({
      config: this.config.sandbox,
      timeoutMs: this.config.timeoutMs,
      log: this.log,
      caps: this.caps,
      metrics: this.metrics,
    });
    return this.pool;
  }

  private statsFor(name: string): CodecStats {
    let s = this.stats.get(name);
    if (!s) {
      s = new CodecStats(this.latency?.series(name) ?? new HistogramSeries(LATENCY_BUCKETS));
      this.stats.set(name, s);
    }
    return s;
  }

  /** The instance key of a spec: name, options, and the state of files the options name. */
  private async keyOf(spec: CodecSpec): Promise<string> {
    const name = specName(spec);
    const options = specOptions(spec);
    let key = Object.keys(options).length ? `${name} ${stableJson(options)}` : name;
    const source = this.source(name);
    if (source && !(source.kind === 'plugin' && source.isolation === 'worker')) {
      const plugin = await this.plugin(name).catch(() => null);
      for (const f of plugin?.files?.(options) ?? []) {
        const path = resolve(this.baseDir, f);
        try {
          const st = statSync(path);
          key += `|${path}:${st.mtimeMs}:${st.size}`;
        } catch {
          key += `|${path}:missing`;
        }
      }
    }
    return key;
  }

  /**
   * The entry for a key, created once (concurrent callers share the creation). A codec that failed to be
   * created is tried again by the next `prepare`, not by every uplink.
   */
  private entry(key: string, spec: CodecSpec, current: Map<string, Entry>): Promise<Entry> {
    const existing = current.get(key) ?? this.entries.get(key);
    if (existing && (existing.codec !== null || current.has(key))) return Promise.resolve(existing);
    let p = this.creating.get(key);
    if (!p) {
      p = this.create(key, specName(spec), specOptions(spec)).finally(() => this.creating.delete(key));
      this.creating.set(key, p);
    }
    return p;
  }

  private async create(
    key: string,
    name: string,
    options: Readonly<Record<string, unknown>>,
  ): Promise<Entry> {
    const entry = new Entry(key, name, this.statsFor(name));
    const source = this.source(name);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!source) throw new Error(this.unknown(name));
      const made: Promise<Codec> =
        source.kind === 'plugin' && source.isolation === 'worker'
          ? this.sandbox().loadModule(name, source.specifier, options, this.baseDir)
          : this.plugin(name).then((plugin) => plugin.create(options, this.env));
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`creating it took longer than ${CREATE_TIMEOUT_MS} ms`)),
          CREATE_TIMEOUT_MS,
        );
      });
      const codec = await Promise.race([made, limit]);
      if (typeof codec?.decodeUplink !== 'function')
        throw new Error('create() returned no codec with decodeUplink');
      entry.codec = codec;
      entry.check = source.kind === 'plugin' && source.isolation === 'none';
      entry.sandboxed = codec instanceof SandboxedCodec;
    } catch (err) {
      entry.error = failureMessage(
        err instanceof CodecFailure ? err : new CodecFailure('unavailable', (err as Error).message),
      );
    } finally {
      clearTimeout(timer);
    }
    return entry;
  }

  private async ensureDefaults(): Promise<NonNullable<CodecRegistry['defaults']>> {
    if (this.defaults) return this.defaults;
    const [raw, json, cbor, senml] = await Promise.all(
      (['raw', 'json', 'cbor', 'senml'] as const).map((n) => this.entry(n, n, this.entries)),
    );
    this.defaults = { raw, json, cbor, senml };
    for (const e of [raw, json, cbor, senml]) this.entries.set(e.key, e);
    return this.defaults;
  }

  /**
   * Creates the codecs the devices use (reusing those that did not change) and switches to them; codecs no
   * longer used are closed once decodes in flight had time to finish. Never rejects: codecs that cannot be
   * created are reported (and logged); their devices' uplinks get a decodeError.
   */
  prepare(devices: Iterable<Device>): Promise<PrepareReport> {
    const list = [...devices];
    const run = this.preparing.then(() => this.doPrepare(list));
    this.preparing = run.catch(() => undefined);
    return run;
  }

  private async doPrepare(devices: readonly Device[]): Promise<PrepareReport> {
    const defaults = await this.ensureDefaults();
    const next = new Map<string, Entry>();
    for (const e of Object.values(defaults)) next.set(e.key, e);
    const byDevice = new WeakMap<Device, DeviceCodecs>();
    const users = new Map<string, string[]>();
    const keys = new Map<CodecSpec, string>();
    const specs = new Map<string, CodecSpec>();
    for (const d of devices) {
      for (const spec of [d.codec, ...Object.values(d.paths ?? {})]) {
        if (spec === undefined || keys.has(spec)) continue;
        const key = await this.keyOf(spec);
        keys.set(spec, key);
        specs.set(key, spec);
      }
    }
    const made = await Promise.all([...specs].map(([key, spec]) => this.entry(key, spec, next)));
    for (const e of made) next.set(e.key, e);
    for (const d of devices) {
      const codec = d.codec === undefined ? null : (next.get(keys.get(d.codec) as string) as Entry);
      let paths: Map<string, Entry> | null = null;
      for (const [path, spec] of Object.entries(d.paths ?? {})) {
        paths ??= new Map();
        const e = next.get(keys.get(spec) as string) as Entry;
        paths.set(path.replace(/^\/+/, ''), e);
      }
      byDevice.set(d, codec === null && paths === null ? NO_CODECS : { codec, paths });
      for (const e of [codec, ...(paths?.values() ?? [])]) {
        if (e?.error) {
          const list = users.get(e.key) ?? [];
          list.push(d.id);
          users.set(e.key, list);
        }
      }
    }
    const previous = this.entries;
    this.entries = next;
    this.byDevice = byDevice;
    this.retire(previous, next);
    const failed = [...users].map(([key, devs]) => {
      const e = next.get(key) as Entry;
      this.log.error(
        { codec: e.name, devices: devs.length, deviceIds: devs.slice(0, 20), err: e.error },
        `codec unavailable for ${deviceList(devs)}`,
      );
      return { codec: e.name, devices: devs, error: e.error as string };
    });
    return { codecs: next.size, failed };
  }

  /** Closes codecs that went out of use, after the time limit (decodes in flight may still use them). */
  private retire(previous: Map<string, Entry>, next: Map<string, Entry>): void {
    const gone = [...previous.values()].filter((e) => !next.has(e.key) && e.codec);
    if (gone.length === 0) return;
    const t = setTimeout(() => {
      for (const e of gone) void this.closeEntry(e);
    }, this.config.timeoutMs + 1000);
    t.unref();
  }

  private async closeEntry(e: Entry): Promise<void> {
    try {
      await e.codec?.close?.();
    } catch (err) {
      this.log.warn({ codec: e.name, err: (err as Error).message }, 'codec close failed');
    }
  }

  /**
   * Follows a device registry: prepares its devices now (`ready`) and after every reload; `stop` ends that.
   * A registry that cannot list its devices gets its devices' codecs created on first use.
   */
  follow(devices: DeviceRegistry): { ready: Promise<PrepareReport>; stop: () => void } {
    const list = (): Iterable<Device> => devices.values?.() ?? [];
    const stop = devices.onChange(() => void this.prepare(list()));
    return { ready: this.prepare(list()), stop };
  }

  /** Codecs of a device the last `prepare` did not see (added since, or from a remote registry). */
  private async prepareDevice(device: Device): Promise<DeviceCodecs> {
    await this.ensureDefaults();
    const known = this.byDevice.get(device);
    if (known) return known;
    const codec =
      device.codec === undefined
        ? null
        : await this.entry(await this.keyOf(device.codec), device.codec, this.entries);
    let paths: Map<string, Entry> | null = null;
    for (const [path, spec] of Object.entries(device.paths ?? {})) {
      paths ??= new Map();
      paths.set(path.replace(/^\/+/, ''), await this.entry(await this.keyOf(spec), spec, this.entries));
    }
    for (const e of [codec, ...(paths?.values() ?? [])]) if (e) this.entries.set(e.key, e);
    const dc = codec === null && paths === null ? NO_CODECS : { codec, paths };
    this.byDevice.set(device, dc);
    return dc;
  }

  private defaultFor(contentFormat: number | undefined): Entry {
    const d = this.defaults as NonNullable<CodecRegistry['defaults']>;
    switch (contentFormat) {
      case ContentFormat.JSON:
        return d.json;
      case ContentFormat.CBOR:
        return d.cbor;
      case ContentFormat.SENML_JSON:
      case ContentFormat.SENML_CBOR:
        return d.senml;
      default:
        return d.raw;
    }
  }

  /**
   * Whether the codec that would decode this uplink takes its Content-Format. A device without a codec of its
   * own takes any (the Content-Format picks the codec); so does a codec that declares no `contentFormats`.
   * Returns the reason when it does not, for a 4.15 answer.
   */
  refuses(device: Device, path: string, contentFormat: number | undefined): string | undefined {
    if (contentFormat === undefined) return undefined;
    const dc = this.byDevice.get(device);
    if (dc === undefined) return undefined;
    const entry = (dc.paths !== null ? dc.paths.get(path) : undefined) ?? dc.codec;
    const formats = entry?.codec?.contentFormats;
    if (!entry || !formats || formats.includes(contentFormat)) return undefined;
    return `Codec ${entry.name} takes Content-Format ${formats.join(', ')}, not ${contentFormat}`;
  }

  /** Decodes an uplink with the device's codec. Never throws, never rejects. */
  decode(device: Device, bytes: Buffer, ctx: UplinkContext): DecodeResult | Promise<DecodeResult> {
    const dc = this.byDevice.get(device);
    if (dc === undefined || this.defaults === null) {
      return this.prepareDevice(device).then(
        () => this.decode(device, bytes, ctx),
        (err: unknown) =>
          this.failed(this.defaultFor(undefined), false, 'unavailable', failureMessage(err), 0),
      );
    }
    const entry =
      (dc.paths !== null ? dc.paths.get(ctx.path) : undefined) ??
      dc.codec ??
      this.defaultFor(ctx.contentFormat);
    const codec = entry.codec;
    if (codec === null)
      return this.failed(entry, false, 'unavailable', entry.error ?? 'codec unavailable', 0);
    const t0 = performance.now();
    if (entry.sandboxed) return this.sandboxed(entry, codec as SandboxedCodec, bytes, undefined, ctx, t0);
    let out: DecodeOutput | Promise<DecodeOutput>;
    try {
      out = codec.decodeUplink(bytes, ctx);
    } catch (err) {
      return this.failed(entry, false, failureReason(err), failureMessage(err), t0);
    }
    if (isPromiseLike(out)) return this.later(entry, false, out, t0);
    return this.decoded(entry, out, t0);
  }

  private decoded(entry: Entry, out: DecodeOutput, t0: number): DecodeResult {
    if (out === null || typeof out !== 'object' || !('data' in out))
      return this.failed(entry, false, 'invalid', 'the codec returned no { data }', t0);
    const data = out.data;
    if (entry.check) {
      try {
        assertJsonable(data, 0, new Set());
      } catch (err) {
        return this.failed(entry, false, failureReason(err), failureMessage(err), t0);
      }
    }
    entry.stats.latency.observe((performance.now() - t0) / 1000);
    const warnings = out.warnings;
    if (data === null && (warnings === undefined || warnings.length === 0)) return entry.nothing;
    return warnings && warnings.length ? { codec: entry.name, data, warnings } : { codec: entry.name, data };
  }

  private failed(
    entry: Entry,
    encode: false,
    reason: FailureReason,
    message: string,
    t0: number,
  ): DecodeResult;
  private failed(
    entry: Entry,
    encode: true,
    reason: FailureReason,
    message: string,
    t0: number,
  ): EncodeResult;
  private failed(entry: Entry, encode: boolean, reason: FailureReason, message: string, t0: number): Result;
  private failed(entry: Entry, encode: boolean, reason: FailureReason, message: string, t0: number): Result {
    const i = FAILURE_REASONS.indexOf(reason);
    if (encode) {
      entry.stats.encodeFailures[i]++;
      return { codec: entry.name, bytes: null, error: message };
    }
    entry.stats.decodeFailures[i]++;
    if (t0 > 0) entry.stats.latency.observe((performance.now() - t0) / 1000);
    return { codec: entry.name, data: null, error: message };
  }

  /** Waits for an asynchronous codec, within the time limit. */
  private later<T extends DecodeResult | EncodeResult>(
    entry: Entry,
    encode: boolean,
    out: PromiseLike<DecodeOutput | EncodeOutput>,
    t0: number,
  ): Promise<T> {
    if (this.inFlight >= this.config.maxPending) {
      // Nobody waits for this answer; a late rejection must not go unhandled.
      out.then(undefined, ignore);
      return Promise.resolve(this.overloaded(entry, encode, t0) as T);
    }
    return this.track(entry, encode, t0, (p) =>
      out.then(
        (value) => this.settled(p, value, null),
        (err: unknown) => this.settled(p, null, err),
      ),
    );
  }

  /** Hands a message to the sandbox with the pending entry as its sink: one promise per message. */
  private sandboxed<T extends DecodeResult | EncodeResult>(
    entry: Entry,
    codec: SandboxedCodec,
    bytes: Buffer | null,
    data: unknown,
    ctx: UplinkContext | DownlinkContext,
    t0: number,
  ): Promise<T> {
    const encode = bytes === null;
    if (this.inFlight >= this.config.maxPending)
      return Promise.resolve(this.overloaded(entry, encode, t0) as T);
    return this.track(entry, encode, t0, (p) =>
      codec.submit(encode ? OP_ENCODE : OP_DECODE, bytes, data, ctx, p),
    );
  }

  /** A promise for work in flight, answered by its outcome or by the deadline sweep, whichever comes first. */
  private track<T>(
    entry: Entry,
    encode: boolean,
    t0: number,
    start: (p: PendingCodecCall) => void,
  ): Promise<T> {
    return new Promise<T>((resolve) => {
      const p = new PendingCodecCall(
        this,
        entry,
        encode,
        t0,
        t0 + this.config.timeoutMs,
        resolve as (r: Result) => void,
      );
      this.enqueue(p);
      start(p);
    });
  }

  private overloaded(entry: Entry, encode: boolean, t0: number): Result {
    this.caps?.hit('codec_pending');
    return this.failed(entry, encode, 'overload', 'too many decodes in flight', t0);
  }

  private enqueue(p: PendingCodecCall): void {
    this.inFlight++;
    this.pending.add(p);
  }

  /** Where a pending decode or encode ends (first outcome wins; the deadline sweep may come first). */
  settled(p: PendingCodecCall, value: DecodeOutput | EncodeOutput | null, err: unknown): void {
    if (p.done) return;
    p.done = true;
    this.inFlight--;
    this.pending.noteCancelled();
    if (err !== null)
      p.resolve(this.failed(p.entry, p.encode, failureReason(err), failureMessage(err), p.t0));
    else if (p.encode) p.resolve(this.encoded(p.entry, value as EncodeOutput) as Result);
    else p.resolve(this.decoded(p.entry, value as DecodeOutput, p.t0) as Result);
  }

  /** Fails work whose deadline passed without an answer. */
  private timedOut(p: PendingCodecCall): void {
    p.done = true;
    this.inFlight--;
    p.resolve(
      this.failed(p.entry, p.encode, 'timeout', `no answer within ${this.config.timeoutMs} ms`, p.t0),
    );
  }

  /**
   * Encodes a downlink for a device. Bytes go as they are (raw); a request that accepts JSON (50), CBOR (60)
   * or SenML (110, 112) gets that; otherwise the device's codec encodes (a device without a codec gets JSON).
   * Never throws, never rejects.
   */
  encodeDownlink(device: Device, data: unknown, ctx: DownlinkContext): EncodeResult | Promise<EncodeResult> {
    const dc = this.byDevice.get(device);
    if (dc === undefined || this.defaults === null) {
      return this.prepareDevice(device).then(
        () => this.encodeDownlink(device, data, ctx),
        (err: unknown) =>
          this.failed(this.defaultFor(undefined), true, 'unavailable', failureMessage(err), 0),
      );
    }
    const d = this.defaults;
    let entry: Entry;
    if (Buffer.isBuffer(data) || data instanceof Uint8Array) entry = d.raw;
    else if (
      ctx.accept === ContentFormat.JSON ||
      ctx.accept === ContentFormat.CBOR ||
      ctx.accept === ContentFormat.SENML_JSON ||
      ctx.accept === ContentFormat.SENML_CBOR
    )
      entry = this.defaultFor(ctx.accept);
    else if (dc.codec === null) entry = d.json;
    else entry = dc.codec;
    const codec = entry.codec;
    if (codec === null) return this.failed(entry, true, 'unavailable', entry.error ?? 'codec unavailable', 0);
    if (!codec.encodeDownlink) return this.unsupported(entry);
    const t0 = performance.now();
    if (entry.sandboxed) return this.sandboxed(entry, codec as SandboxedCodec, null, data, ctx, t0);
    let out: EncodeOutput | Promise<EncodeOutput>;
    try {
      out = codec.encodeDownlink(data, ctx);
    } catch (err) {
      return this.failed(entry, true, failureReason(err), failureMessage(err), 0);
    }
    if (isPromiseLike(out)) return this.later(entry, true, out, t0);
    return this.encoded(entry, out);
  }

  /** A codec without downlink encoding: counted as `unavailable`, flagged so nobody reports it as a fault. */
  private unsupported(entry: Entry): EncodeResult {
    const message = `codec ${entry.name} does not encode downlinks; send bytes`;
    const failed = this.failed(entry, true, 'unavailable', message, 0);
    return { codec: failed.codec, bytes: null, error: message, unsupported: true };
  }

  private encoded(entry: Entry, out: EncodeOutput): EncodeResult {
    const bytes: Uint8Array | undefined = out?.bytes;
    if (!(bytes instanceof Uint8Array))
      return this.failed(entry, true, 'invalid', 'the codec returned no { bytes }', 0);
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return out.contentFormat === undefined
      ? { codec: entry.name, bytes: buf }
      : { codec: entry.name, bytes: buf, contentFormat: out.contentFormat };
  }

  /** Closes every codec and the sandbox; pending work fails with reason `unavailable`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.preparing;
    for (const p of this.pending.drain()) {
      p.done = true;
      this.inFlight--;
      p.resolve(this.failed(p.entry, p.encode, 'unavailable', 'the codec registry closed', p.t0));
    }
    await Promise.all([...this.entries.values()].map((e) => this.closeEntry(e)));
    await this.pool?.close();
  }
}
