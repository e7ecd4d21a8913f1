/**
 * The sandbox worker: runs payload-formatter scripts (each in its own `vm` context) and isolated codec plugin
 * modules, a batch of messages at a time. It is started from its source text (`sandboxWorkerSource`), so
 * `sandboxWorker` must use nothing from module scope: Node modules, constants and helpers come in as
 * arguments. The gateway thread watches the shared progress counters to find a call that never returns.
 */
import type * as WorkerThreads from 'node:worker_threads';
import type * as Vm from 'node:vm';
import { jsonDepthExceeds } from '../json-text.js';
import * as protocol from './protocol.js';
import type {
  BatchRequest,
  LoadReply,
  LoadRequest,
  ModuleLoad,
  ScriptLoad,
  WorkerInit,
  WorkerRequest,
} from './protocol.js';

type Protocol = typeof protocol;

/** Functions a payload-formatter script may define (The Things Stack, ChirpStack v4, and their v2/v3 forms). */
interface FormatterFunctions {
  decodeUplink?: (input: unknown) => unknown;
  encodeDownlink?: (input: unknown) => unknown;
  Decoder?: (bytes: unknown, port: number) => unknown;
  Encoder?: (data: unknown, port: number) => unknown;
  Decode?: (port: number, bytes: unknown, variables: unknown) => unknown;
  Encode?: (port: number, data: unknown, variables: unknown) => unknown;
}

/** Helpers created inside each script's context, so the script sees its own realm's arrays and objects. */
interface ContextHelpers {
  input(bytes: Uint8Array, fPort: number, time: number, variables: string): unknown;
  array(bytes: Uint8Array): unknown;
  parse(json: string): unknown;
}

/** A loaded codec inside the worker. `call` may return a promise; `finish` reports the outcome of index i. */
interface Loaded {
  readonly encodes: boolean;
  readonly contentFormats?: readonly number[];
  decode(bytes: Uint8Array, time: number, ctx: unknown): unknown;
  encode(data: unknown, ctx: unknown): unknown;
  finishDecode(i: number, out: unknown): void;
  finishEncode(i: number, out: unknown): void;
}

export function sandboxWorker(
  wt: typeof WorkerThreads,
  vm: typeof Vm,
  importModule: (specifier: string) => Promise<unknown>,
  depthExceeds: (text: string, max: number) => boolean,
  P: Protocol,
): void {
  const port = wt.parentPort;
  if (!port) return;
  const init = wt.workerData as WorkerInit;
  const progress = new Int32Array(init.progress);
  const codecs = new Map<number, Loaded>();
  const UNSET = 255;

  // The batch being answered (one at a time): outcomes are written here by index.
  let status = new Uint8Array(0);
  let values: unknown[] = [];
  let warnings: (string[] | null)[] = [];

  function settle(i: number, s: number, value: unknown, w: string[] | null): void {
    if (status[i] !== UNSET) return;
    status[i] = s;
    values[i] = value;
    warnings[i] = w;
  }

  // Errors thrown in a script's context are not instances of this realm's Error.
  function message(err: unknown): string {
    const m = (err as { message?: unknown } | null)?.message;
    if (typeof m === 'string') return m;
    return typeof err === 'string' ? err : String(err);
  }

  function fault(i: number, err: unknown): void {
    const decodeError = (err as { name?: unknown } | null)?.name === 'DecodeError';
    settle(i, decodeError ? P.STATUS_ERROR : P.STATUS_EXCEPTION, message(err), null);
  }

  function warningList(w: unknown): string[] | null {
    if (!Array.isArray(w) || w.length === 0) return null;
    return w.slice(0, 16).map((x) => String(x).slice(0, 256));
  }

  /**
   * Hands decoded data over as JSON text (cheaper to pass between threads than an object graph, and proof
   * that it has a JSON form), or says why it cannot be.
   */
  function output(i: number, data: unknown, w: string[] | null): void {
    let json: string | undefined;
    try {
      json = JSON.stringify(data);
    } catch (err) {
      settle(i, P.STATUS_INVALID, `decoded data has no JSON form: ${message(err)}`, null);
      return;
    }
    if (json === undefined) {
      settle(i, P.STATUS_INVALID, 'decoded data has no JSON form', null);
      return;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count bytes only when it could matter.
    if (json.length * 3 > init.maxOutputBytes && Buffer.byteLength(json) > init.maxOutputBytes) {
      settle(i, P.STATUS_INVALID, `decoded JSON is larger than ${init.maxOutputBytes} bytes`, null);
      return;
    }
    if (depthExceeds(json, init.maxDepth)) {
      settle(i, P.STATUS_INVALID, `decoded data nests deeper than ${init.maxDepth} levels`, null);
      return;
    }
    settle(i, P.STATUS_OK, json, w);
  }

  /** Bytes a formatter returned (array of 0..255 or a typed array), copied out of its realm. */
  function outputBytes(i: number, bytes: unknown, contentFormat: number | undefined): void {
    const list = bytes as ArrayLike<unknown> | null;
    if (list === null || typeof list !== 'object' || typeof list.length !== 'number') {
      settle(i, P.STATUS_INVALID, 'encoder returned no bytes array', null);
      return;
    }
    if (list.length > init.maxOutputBytes) {
      settle(i, P.STATUS_INVALID, `encoded downlink is larger than ${init.maxOutputBytes} bytes`, null);
      return;
    }
    const out = new Uint8Array(list.length);
    for (let k = 0; k < list.length; k++) {
      const b = list[k];
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) {
        settle(i, P.STATUS_INVALID, `encoder returned a non-byte value at index ${k}`, null);
        return;
      }
      out[k] = b;
    }
    settle(
      i,
      P.STATUS_OK,
      contentFormat === undefined ? { bytes: out } : { bytes: out, contentFormat },
      null,
    );
  }

  /** A formatter's result object, or null once its outcome is settled (not an object, or `errors`). */
  function formatterResult(i: number, out: unknown, shape: string): Record<string, unknown> | null {
    if (out === null || typeof out !== 'object') {
      settle(i, P.STATUS_INVALID, shape, null);
      return null;
    }
    const r = out as Record<string, unknown>;
    return errorsOf(i, r) ? null : r;
  }

  function errorsOf(i: number, r: Record<string, unknown>): boolean {
    const errors = r.errors;
    if (errors === undefined || errors === null) return false;
    if (!Array.isArray(errors)) {
      settle(i, P.STATUS_INVALID, '"errors" must be an array of strings', null);
      return true;
    }
    if (errors.length === 0) return false;
    const text = errors
      .slice(0, 8)
      .map((e) => String(e))
      .join('; ');
    settle(i, P.STATUS_ERROR, text.slice(0, 500), warningList(r.warnings));
    return true;
  }

  // Run in each script context before the script: no shared memory or wasm, a console that drops output,
  // and a cap on ArrayBuffer / typed array sizes (their memory lies outside the worker's JS heap limit).
  const PRELUDE = `(function (maxBytes) {
  'use strict';
  var g = globalThis;
  delete g.SharedArrayBuffer; delete g.Atomics; delete g.WebAssembly;
  var noop = function () {};
  g.console = { log: noop, info: noop, warn: noop, error: noop, debug: noop, trace: noop };
  ['ArrayBuffer', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
   'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'].forEach(function (name) {
    var Base = g[name];
    var per = Base.BYTES_PER_ELEMENT || 1;
    var Capped = class extends Base {
      constructor(a, b, c) {
        var n = 0;
        if (typeof a === 'number') n = a * per;
        else if (a !== null && typeof a === 'object' && typeof a.byteLength !== 'number') n = (Number(a.length) || 0) * per;
        if (name === 'ArrayBuffer' && b !== null && typeof b === 'object') n = Math.max(n, Number(b.maxByteLength) || 0);
        if (n > maxBytes) throw new RangeError(name + ' of ' + n + ' bytes is over the sandbox limit of ' + maxBytes);
        super(a, b, c);
      }
    };
    Object.defineProperty(Capped, 'name', { value: name });
    Object.defineProperty(g, name, { value: Capped, writable: true, configurable: true, enumerable: false });
  });
  return {
    input: function (bytes, fPort, time, variables) {
      return {
        bytes: Array.from(bytes),
        fPort: fPort,
        recvTime: new Date(time),
        variables: variables === '{}' ? {} : JSON.parse(variables)
      };
    },
    array: function (bytes) { return Array.from(bytes); },
    parse: function (json) { return JSON.parse(json); }
  };
})`;
  const prelude = new vm.Script(PRELUDE, { filename: 'cellgate-sandbox-prelude.js' });
  const NAMES = ['decodeUplink', 'encodeDownlink', 'Decoder', 'Encoder', 'Decode', 'Encode'];
  const EXPORTS = `\n;return {${NAMES.map((n) => `${n}: typeof ${n} === 'function' ? ${n} : undefined`).join(', ')}};`;

  function running<T>(fn: () => T): T {
    Atomics.add(progress, P.PROGRESS_STARTED, 1);
    Atomics.store(progress, P.PROGRESS_RUNNING, 1);
    try {
      return fn();
    } finally {
      Atomics.store(progress, P.PROGRESS_RUNNING, 0);
    }
  }

  function loadScript(req: ScriptLoad): Loaded {
    const context = vm.createContext(
      {},
      { name: req.filename, codeGeneration: { strings: true, wasm: false } },
    );
    const helpers = (prelude.runInContext(context) as (max: number) => ContextHelpers)(
      init.maxAllocationBytes,
    );
    // The script's top level becomes a function body: its declarations stay local (fast), as they would be
    // in a module, while undeclared assignments still reach the context's global object.
    const body = vm.compileFunction(req.source + EXPORTS, [], {
      parsingContext: context,
      filename: req.filename,
    });
    const fns = running(() => body()) as FormatterFunctions;
    if (!fns.decodeUplink && !fns.Decoder && !fns.Decode)
      throw new Error('the script defines no decodeUplink function (nor Decoder or Decode)');
    const vars = JSON.stringify(req.variables);
    const fPort = req.fPort;
    return {
      encodes: Boolean(fns.encodeDownlink || fns.Encoder || fns.Encode),
      decode(bytes, time) {
        if (fns.decodeUplink) return fns.decodeUplink(helpers.input(bytes, fPort, time, vars));
        if (fns.Decode) return { data: fns.Decode(fPort, helpers.array(bytes), helpers.parse(vars)) };
        return { data: fns.Decoder?.(helpers.array(bytes), fPort) };
      },
      encode(data) {
        const json = JSON.stringify(data) ?? 'null';
        if (fns.encodeDownlink)
          return fns.encodeDownlink({ data: helpers.parse(json), variables: helpers.parse(vars) });
        if (fns.Encode) return { bytes: fns.Encode(fPort, helpers.parse(json), helpers.parse(vars)) };
        if (fns.Encoder) return { bytes: fns.Encoder(helpers.parse(json), fPort) };
        throw new Error('the script defines no encodeDownlink function');
      },
      finishDecode(i, out) {
        const r = formatterResult(i, out, 'decodeUplink must return an object { data, warnings, errors }');
        if (r === null) return;
        if (r.data === undefined) {
          settle(i, P.STATUS_INVALID, 'decodeUplink returned no data', null);
          return;
        }
        output(i, r.data, warningList(r.warnings));
      },
      finishEncode(i, out) {
        const r = formatterResult(i, out, 'encodeDownlink must return an object { bytes, fPort }');
        if (r !== null) outputBytes(i, r.bytes, 42);
      },
    };
  }

  async function loadModule(req: ModuleLoad): Promise<Loaded> {
    const mod = (await importModule(req.specifier)) as { default?: unknown };
    const plugin = (mod.default ?? mod) as {
      create?: (options: unknown, env: unknown) => unknown;
    };
    if (typeof plugin?.create !== 'function')
      throw new Error('the module has no codec plugin as its default export ({ name, create })');
    const codec = (await plugin.create(req.options, { baseDir: req.baseDir })) as {
      decodeUplink?: (bytes: Buffer, ctx: unknown) => unknown;
      encodeDownlink?: (data: unknown, ctx: unknown) => unknown;
      contentFormats?: unknown;
    } | null;
    if (typeof codec?.decodeUplink !== 'function')
      throw new Error('create() returned no codec with decodeUplink');
    const decodeUplink = codec.decodeUplink.bind(codec);
    const encodeDownlink = codec.encodeDownlink?.bind(codec);
    const formats = codec.contentFormats;
    return {
      encodes: typeof encodeDownlink === 'function',
      contentFormats:
        Array.isArray(formats) && formats.every((f) => Number.isInteger(f))
          ? (formats as number[])
          : undefined,
      decode(bytes, _time, ctx) {
        return decodeUplink(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), ctx);
      },
      encode(data, ctx) {
        if (!encodeDownlink) throw new Error('the codec has no encodeDownlink');
        return encodeDownlink(data, ctx);
      },
      finishDecode(i, out) {
        if (out === null || typeof out !== 'object' || !('data' in out)) {
          settle(i, P.STATUS_INVALID, 'decodeUplink must return { data, warnings? }', null);
          return;
        }
        const r = out as { data: unknown; warnings?: unknown };
        output(i, r.data, warningList(r.warnings));
      },
      finishEncode(i, out) {
        const r = out as { bytes?: unknown; contentFormat?: unknown } | null;
        if (r === null || typeof r !== 'object' || !(r.bytes instanceof Uint8Array)) {
          settle(i, P.STATUS_INVALID, 'encodeDownlink must return { bytes: Buffer, contentFormat? }', null);
          return;
        }
        if (r.bytes.length > init.maxOutputBytes) {
          settle(i, P.STATUS_INVALID, `encoded downlink is larger than ${init.maxOutputBytes} bytes`, null);
          return;
        }
        const cf = typeof r.contentFormat === 'number' ? r.contentFormat : undefined;
        settle(
          i,
          P.STATUS_OK,
          cf === undefined ? { bytes: r.bytes } : { bytes: r.bytes, contentFormat: cf },
          null,
        );
      },
    };
  }

  function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  async function load(req: LoadRequest): Promise<void> {
    let reply: LoadReply;
    try {
      const loaded =
        req.kind === 'script'
          ? loadScript(req)
          : await withTimeout(loadModule(req), init.loadTimeoutMs, 'loading the plugin');
      codecs.set(req.id, loaded);
      reply = {
        t: 'loaded',
        id: req.id,
        error: null,
        encode: loaded.encodes,
        contentFormats: loaded.contentFormats,
      };
    } catch (err) {
      reply = { t: 'loaded', id: req.id, error: message(err), encode: false };
    }
    port?.postMessage(reply);
  }

  function batch(m: BatchRequest): void {
    const n = m.n;
    status = new Uint8Array(n).fill(UNSET);
    values = new Array<unknown>(n);
    warnings = new Array<string[] | null>(n).fill(null);
    const s = status;
    const v = values;
    const w = warnings;
    let waiting = 0;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (let i = 0; i < n; i++) {
        if (s[i] === UNSET) {
          s[i] = P.STATUS_TIMEOUT;
          v[i] = `no answer within ${init.asyncTimeoutMs} ms`;
        }
      }
      port?.postMessage({ t: 'done', status: s, values: v, warnings: w });
    };
    let start = 0;
    for (let i = 0; i < n; i++) {
      const end = m.ends[i];
      const codec = codecs.get(m.ids[i]);
      const op = m.ops[i];
      const ctx = m.ctxs ? m.ctxs[i] : undefined;
      const bytes = m.bytes.subarray(start, end);
      start = end;
      // Every message counts as started, so the gateway thread can tell which one a stuck worker was on.
      Atomics.add(progress, P.PROGRESS_STARTED, 1);
      if (!codec) {
        settle(i, P.STATUS_UNKNOWN_CODEC, 'codec not loaded in the sandbox', null);
        continue;
      }
      let out: unknown;
      Atomics.store(progress, P.PROGRESS_RUNNING, 1);
      try {
        out = op === P.OP_DECODE ? codec.decode(bytes, m.times[i], ctx) : codec.encode(m.data?.[i], ctx);
      } catch (err) {
        Atomics.store(progress, P.PROGRESS_RUNNING, 0);
        fault(i, err);
        continue;
      }
      Atomics.store(progress, P.PROGRESS_RUNNING, 0);
      if (typeof (out as { then?: unknown } | null)?.then === 'function') {
        waiting++;
        const index = i;
        (out as Promise<unknown>).then(
          (r) => {
            if (finished) return;
            if (op === P.OP_DECODE) codec.finishDecode(index, r);
            else codec.finishEncode(index, r);
            if (--waiting === 0) finish();
          },
          (err: unknown) => {
            if (finished) return;
            fault(index, err);
            if (--waiting === 0) finish();
          },
        );
      } else if (op === P.OP_DECODE) codec.finishDecode(i, out);
      else codec.finishEncode(i, out);
    }
    if (waiting === 0) finish();
    else timer = setTimeout(finish, init.asyncTimeoutMs);
  }

  port.on('message', (m: WorkerRequest) => {
    if (m.t === 'batch') batch(m);
    else if (m.t === 'load') void load(m);
    else codecs.delete(m.id);
  });
}

/** The source text a sandbox worker is started from (`new Worker(source, { eval: true })`). */
export function sandboxWorkerSource(): string {
  const constants = JSON.stringify({ ...protocol });
  return (
    `'use strict';\n(${sandboxWorker.toString()})(require('node:worker_threads'), require('node:vm'), ` +
    `(s) => import(s), ${jsonDepthExceeds.toString()}, ${constants});\n`
  );
}
