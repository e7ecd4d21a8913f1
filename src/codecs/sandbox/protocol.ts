/** Messages between the sandbox pool (gateway thread) and its worker threads. */

/** Per-message outcome in a batch reply. */
export const STATUS_OK = 0;
export const STATUS_ERROR = 1;
export const STATUS_EXCEPTION = 2;
export const STATUS_INVALID = 3;
export const STATUS_TIMEOUT = 4;
export const STATUS_UNKNOWN_CODEC = 5;

export const OP_DECODE = 0;
export const OP_ENCODE = 1;

/** Shared-memory progress counters a worker updates around every call into codec code. */
export const PROGRESS_STARTED = 0;
export const PROGRESS_RUNNING = 1;

export interface WorkerInit {
  /** Int32Array[2]: calls started, and 1 while one runs synchronously. */
  readonly progress: SharedArrayBuffer;
  readonly maxOutputBytes: number;
  readonly maxAllocationBytes: number;
  readonly maxDepth: number;
  /** How long a batch waits for asynchronous codec results. */
  readonly asyncTimeoutMs: number;
  /** How long loading a module plugin may take. */
  readonly loadTimeoutMs: number;
}

export interface ScriptLoad {
  readonly t: 'load';
  readonly id: number;
  readonly kind: 'script';
  readonly name: string;
  readonly source: string;
  readonly filename: string;
  readonly fPort: number;
  readonly variables: Readonly<Record<string, string>>;
}

export interface ModuleLoad {
  readonly t: 'load';
  readonly id: number;
  readonly kind: 'module';
  readonly name: string;
  /** file: URL or package name to import. */
  readonly specifier: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly baseDir: string;
}

export type LoadRequest = ScriptLoad | ModuleLoad;

export interface UnloadRequest {
  readonly t: 'unload';
  readonly id: number;
}

export interface BatchRequest {
  readonly t: 'batch';
  readonly n: number;
  readonly ids: Int32Array;
  readonly ops: Uint8Array;
  /** End offset of each message's payload in `bytes`. */
  readonly ends: Int32Array;
  readonly bytes: Uint8Array;
  /** Reception time (ms since the epoch) of each uplink. */
  readonly times: Float64Array;
  /** Uplink or downlink context per message, for module plugins (null entries for scripts). */
  readonly ctxs: readonly unknown[] | null;
  /** Downlink data per message (encode operations). */
  readonly data: readonly unknown[] | null;
}

export type WorkerRequest = LoadRequest | UnloadRequest | BatchRequest;

export interface LoadReply {
  readonly t: 'loaded';
  /** Content-Formats the loaded codec declares (modules only). */
  readonly contentFormats?: readonly number[];
  readonly id: number;
  readonly error: string | null;
  readonly encode: boolean;
}

/** A successful encode: the bytes and their Content-Format. */
export interface EncodedValue {
  readonly bytes: Uint8Array;
  readonly contentFormat?: number;
}

export interface BatchReply {
  readonly t: 'done';
  readonly status: Uint8Array;
  /** Decoded data as JSON text, an EncodedValue, or the error message, per message. */
  readonly values: unknown[];
  readonly warnings: (string[] | null)[];
}

export type WorkerReply = LoadReply | BatchReply;
