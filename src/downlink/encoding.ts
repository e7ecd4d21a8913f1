/**
 * How a downlink document becomes bytes: JSON for Accept 50, CBOR for Accept 60, otherwise the device
 * codec's `encodeDownlink` (JSON when the request names no format and the codec has none or fails).
 */
import { Encoder } from 'cbor-x';
import { ContentFormat } from '../coap/constants.js';
import type { DownlinkContext } from '../codecs/codec.js';
import type { Device } from '../devices/device.js';

/** What a device codec made of a downlink: bytes, or `bytes: null` and why not. */
export interface EncodedDownlink {
  /** The codec that ran, when known (for the log line of a failure). */
  readonly codec?: string;
  readonly bytes: Buffer | null;
  readonly contentFormat?: number;
  readonly error?: string;
  /** The codec has no downlink encoding (JSON is the documented fallback: nothing to report). */
  readonly unsupported?: boolean;
}

/**
 * Encodes downlinks with a device's codec: the codec registry satisfies it. Undefined, `bytes: null`, a throw
 * or a rejection all mean the codec did not encode (the device then gets JSON when it named no format).
 */
export interface DownlinkCodecs {
  encodeDownlink(
    device: Device,
    data: unknown,
    ctx: DownlinkContext,
  ): EncodedDownlink | Promise<EncodedDownlink> | undefined;
}

/** Plain CBOR (RFC 8949): definite-length maps with text keys, no cbor-x record extensions. */
const cbor = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  tagUint8Array: false,
});

export function encodeJson(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

/** Integers beyond 32 bits as BigInt, so CBOR carries them as integers (major types 0/1), not float64. */
function widenIntegers(v: unknown): unknown {
  if (typeof v === 'number')
    return Number.isInteger(v) && (v > 0xffffffff || v < -0x100000000) ? BigInt(v) : v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const w = widenIntegers(v[i]);
      if (w !== v[i]) (out ??= v.slice())[i] = w;
    }
    return out ?? v;
  }
  if (v !== null && typeof v === 'object') {
    let out: Record<string, unknown> | undefined;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const w = widenIntegers(o[k]);
      if (w !== o[k]) (out ??= { ...o })[k] = w;
    }
    return out ?? v;
  }
  return v;
}

export function encodeCbor(doc: unknown): Buffer {
  return Buffer.from(cbor.encode(widenIntegers(doc)));
}

export const enum Format {
  JSON,
  CBOR,
  /** The device codec (JSON when it has nothing and the request named no format). */
  CODEC,
}

/** The format for a request's Accept option. */
export function formatFor(accept: number | undefined): Format {
  if (accept === ContentFormat.JSON) return Format.JSON;
  if (accept === ContentFormat.CBOR) return Format.CBOR;
  return Format.CODEC;
}
