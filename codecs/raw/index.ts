/** The `raw` codec: no decoding; the envelope's `raw` field carries the bytes. Downlinks: bytes as given. */
import type { Codec, CodecPlugin, DecodeOutput, EncodeOutput } from '../../src/codecs/codec.js';
import { DecodeError } from '../../src/codecs/codec.js';

const NOTHING: DecodeOutput = { data: null };

const raw: Codec = {
  name: 'raw',
  decodeUplink(): DecodeOutput {
    return NOTHING;
  },
  encodeDownlink(data: unknown): EncodeOutput {
    if (Buffer.isBuffer(data)) return { bytes: data, contentFormat: 42 };
    if (data instanceof Uint8Array) return { bytes: Buffer.from(data), contentFormat: 42 };
    if (typeof data === 'string') return { bytes: Buffer.from(data, 'base64'), contentFormat: 42 };
    throw new DecodeError('raw codec encodes only bytes or a base64 string');
  },
};

const plugin: CodecPlugin = {
  name: 'raw',
  description: 'no decoding: the envelope carries the bytes (base64); downlinks are bytes as given',
  create: () => raw,
};
export default plugin;
