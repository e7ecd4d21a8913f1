/**
 * The codec plugin interface. A codec turns a device's uplink bytes into JSON-able data for the envelope
 * and, optionally, a downlink object into bytes for the device. Codecs may be synchronous or asynchronous.
 */
import type { Device } from '../devices/device.js';
import type { TransportName } from '../transport/peer.js';

export interface UplinkContext {
  readonly deviceId: string;
  readonly thing: string;
  /** Uplink path without the leading slash, e.g. `telemetry`. */
  readonly path: string;
  /** Content-Format option of the request, if any. */
  readonly contentFormat: number | undefined;
  readonly transport: TransportName;
  /** When the gateway received the uplink (ms since the epoch); codecs resolve relative times against it. */
  readonly receivedAt?: number;
}

export interface DownlinkContext {
  readonly deviceId: string;
  readonly thing: string;
  /** Accept option of the request the downlink answers, if any. */
  readonly accept: number | undefined;
}

export interface DecodeOutput {
  /** JSON-able decoded value; `null` when the codec has nothing to say (raw). */
  readonly data: unknown;
  readonly warnings?: readonly string[];
}

export interface EncodeOutput {
  readonly bytes: Buffer;
  /** Content-Format of the bytes (e.g. 60 for CBOR). */
  readonly contentFormat?: number;
}

/**
 * Thrown (or rejected) by a codec that cannot decode or encode; the reason goes into the envelope. Any error
 * whose `name` is `DecodeError` counts as one (plugins need not import this class). Other errors count as
 * plugin faults (metric reason `exception`).
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export function isDecodeError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'DecodeError';
}

export interface Codec {
  readonly name: string;
  /**
   * The Content-Formats this codec decodes. An uplink that names another Content-Format is answered 4.15
   * (Unsupported Content-Format) instead of being published with a decode error. Leave it out to take any.
   */
  readonly contentFormats?: readonly number[];
  decodeUplink(bytes: Buffer, ctx: UplinkContext): DecodeOutput | Promise<DecodeOutput>;
  encodeDownlink?(data: unknown, ctx: DownlinkContext): EncodeOutput | Promise<EncodeOutput>;
  close?(): void | Promise<void>;
}

/** Runs payload-formatter scripts with time and memory limits (the `js` codec's host). */
export interface ScriptSandbox {
  /** Compiles a script and checks it defines a decoder; rejects with the reason when it cannot. */
  loadScript(script: ScriptSource): Promise<Codec>;
}

export interface ScriptSource {
  /** Codec name reported in results (`js`). */
  readonly name: string;
  readonly source: string;
  /** File name shown in stack traces and errors. */
  readonly filename: string;
  /** LoRaWAN FPort handed to the formatter (`input.fPort`). */
  readonly fPort: number;
  /** ChirpStack `variables` handed to the formatter. */
  readonly variables: Readonly<Record<string, string>>;
}

export interface CodecEnv {
  /** Folder relative option paths (proto files, scripts) resolve against. */
  readonly baseDir: string;
  /** The script sandbox, when the host provides one (the `js` codec needs it). */
  readonly sandbox?: ScriptSandbox;
}

/** What a codec module exports as its default export. */
export interface CodecPlugin {
  readonly name: string;
  /** One line for `cellgate codec list`. */
  readonly description?: string;
  create(options: Readonly<Record<string, unknown>>, env: CodecEnv): Codec | Promise<Codec>;
  /**
   * Files the options refer to (relative to `env.baseDir`). The registry re-creates the codec when one of them
   * changes, on the next `prepare` (device registry reload).
   */
  files?(options: Readonly<Record<string, unknown>>): readonly string[];
}

export function isPromiseLike<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** What the gateway gets back for an uplink: decoded data, or the reason decoding failed. */
export interface DecodeResult {
  /** Name of the codec that ran. */
  readonly codec: string;
  /** Decoded data; `null` on failure or when the codec has nothing to say. */
  readonly data: unknown;
  readonly warnings?: readonly string[];
  /** Why decoding failed; the envelope is still published, with `raw` and this reason. */
  readonly error?: string;
}

/**
 * What the gateway calls to decode an uplink: it picks the device's codec (per path, per Content-Format) and
 * runs it with time and failure guards. Never throws and never rejects.
 */
export interface UplinkDecoder {
  /** Why this uplink's Content-Format cannot be decoded for the device (answered 4.15), or undefined. */
  refuses?(device: Device, path: string, contentFormat: number | undefined): string | undefined;
  decode(device: Device, bytes: Buffer, ctx: UplinkContext): DecodeResult | Promise<DecodeResult>;
}

/** What the downlink path gets back: the bytes to send, or why there are none. */
export type EncodeResult =
  | {
      readonly codec: string;
      readonly bytes: Buffer;
      readonly contentFormat?: number;
      readonly error?: undefined;
    }
  | {
      readonly codec: string;
      readonly bytes: null;
      readonly error: string;
      /** The codec has no downlink encoding at all (the documented JSON fallback, not a failure to report). */
      readonly unsupported?: boolean;
    };

/**
 * What the downlink path calls: the device's codec encodes (or JSON for Accept 50, CBOR for Accept 60) with
 * time and failure guards. Never throws and never rejects.
 */
export interface DownlinkEncoder {
  encodeDownlink(device: Device, data: unknown, ctx: DownlinkContext): EncodeResult | Promise<EncodeResult>;
}
