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

/** Thrown (or rejected) by a codec that cannot decode or encode; the reason goes into the envelope. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export interface Codec {
  readonly name: string;
  decodeUplink(bytes: Buffer, ctx: UplinkContext): DecodeOutput | Promise<DecodeOutput>;
  encodeDownlink?(data: unknown, ctx: DownlinkContext): EncodeOutput | Promise<EncodeOutput>;
  close?(): void | Promise<void>;
}

export interface CodecEnv {
  /** Folder relative option paths (proto files, scripts) resolve against. */
  readonly baseDir: string;
}

/** What a codec module exports as its default export. */
export interface CodecPlugin {
  readonly name: string;
  create(options: Readonly<Record<string, unknown>>, env: CodecEnv): Codec | Promise<Codec>;
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
  decode(device: Device, bytes: Buffer, ctx: UplinkContext): DecodeResult | Promise<DecodeResult>;
}
