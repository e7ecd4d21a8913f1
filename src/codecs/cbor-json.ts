/**
 * CBOR to JSON-able values and back, with cbor-x. Decoding follows RFC 8949 §6.1 (see `prepareCbor`), with two
 * choices of our own: integers beyond ±(2^53 − 1) and bignums become decimal strings (a JSON number would
 * lose digits in most consumers), and byte strings become base64url text without padding.
 */
import { Decoder, Encoder, type Options } from 'cbor-x';
import { DecodeError } from './codec.js';
import { prepareCbor } from './cbor-input.js';

const decoder = new Decoder({ mapsAsObjects: true, useRecords: false });
const mapDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });
// Plain CBOR for devices: the shortest map heads (RFC 8949 §4.1 preferred serialization), and no cbor-x
// private tags (records, tag 259 around Maps, typed-array tags).
// (`useTag259ForMaps` is read by cbor-x but missing from its typings.)
const encoderOptions: Options & { useTag259ForMaps: boolean } = {
  mapsAsObjects: true,
  useRecords: false,
  tagUint8Array: false,
  variableMapSize: true,
  useTag259ForMaps: false,
};
const encoder = new Encoder(encoderOptions);

/** Turns what cbor-x returns for prepared input into JSON-able values, in place where it can. */
function jsonable(v: unknown): unknown {
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? v : null;
    case 'bigint':
      return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v.toString();
    case 'undefined':
      return null;
    case 'object': {
      if (v === null) return null;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) v[i] = jsonable(v[i]);
        return v;
      }
      if (v instanceof Uint8Array)
        return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64url');
      const o = v as Record<string, unknown>;
      for (const k in o) o[k] = jsonable(o[k]);
      return o;
    }
    default:
      return v;
  }
}

/** Decodes one CBOR data item into a JSON-able value; throws a DecodeError on bad input. */
export function decodeCborJson(bytes: Buffer): unknown {
  const input = prepareCbor(bytes);
  let value: unknown;
  try {
    value = decoder.decode(input);
  } catch (err) {
    throw new DecodeError(`CBOR: ${(err as Error).message}`);
  }
  return jsonable(value);
}

/**
 * Decodes one CBOR data item keeping CBOR's types: maps as `Map` (keys of any type), byte strings as
 * `Uint8Array`, large integers as `bigint`. For formats with integer map keys (SenML).
 */
export function decodeCborMaps(bytes: Buffer): unknown {
  const input = prepareCbor(bytes);
  try {
    return mapDecoder.decode(input);
  } catch (err) {
    throw new DecodeError(`CBOR: ${(err as Error).message}`);
  }
}

/** Encodes a JSON-able value (or bytes) as CBOR. */
export function encodeCbor(value: unknown): Buffer {
  try {
    return Buffer.from(encoder.encode(value));
  } catch (err) {
    throw new DecodeError(`cannot encode as CBOR: ${(err as Error).message}`);
  }
}
