/**
 * How a downlink document becomes bytes: JSON for Accept 50, CBOR for Accept 60, otherwise the device
 * codec's `encodeDownlink` (JSON when the request names no format and the codec has none or fails).
 */
import { Encoder } from 'cbor-x';
import { ContentFormat } from '../coap/constants.js';
import type { DownlinkContext, EncodeOutput } from '../codecs/codec.js';
import type { Device } from '../devices/device.js';

/**
 * Encodes downlinks with a device's codec. The codec registry provides this: it returns undefined when the
 * device's codec does not encode downlinks, and may throw or reject when encoding fails.
 */
export interface DownlinkCodecs {
  encodeDownlink(
    device: Device,
    data: unknown,
    ctx: DownlinkContext,
  ): EncodeOutput | Promise<EncodeOutput> | undefined;
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

export function encodeCbor(doc: unknown): Buffer {
  return Buffer.from(cbor.encode(doc));
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
