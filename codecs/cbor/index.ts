/**
 * The `cbor` codec (RFC 8949, Content-Format 60), decoded with cbor-x into JSON following RFC 8949 §6.1:
 * byte strings as base64url, tags dropped (content kept), integers beyond 2^53 and bignums as decimal strings,
 * NaN, Infinity and undefined as null. Downlinks: any JSON-able value encoded as CBOR.
 */
import type { Codec, CodecPlugin, DecodeOutput, EncodeOutput } from '../../src/codecs/codec.js';
import { decodeCborJson, encodeCbor } from '../../src/codecs/cbor-json.js';

const cbor: Codec = {
  name: 'cbor',
  contentFormats: [60],
  decodeUplink(bytes: Buffer): DecodeOutput {
    return { data: decodeCborJson(bytes) };
  },
  encodeDownlink(data: unknown): EncodeOutput {
    return { bytes: encodeCbor(data), contentFormat: 60 };
  },
};

const plugin: CodecPlugin = {
  name: 'cbor',
  description: 'CBOR (Content-Format 60) to JSON per RFC 8949 §6.1',
  create: () => cbor,
};
export default plugin;
