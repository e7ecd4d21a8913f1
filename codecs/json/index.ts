/** The `json` codec: the payload is a JSON text (Content-Format 50); downlinks are serialised as JSON. */
import type { Codec, CodecPlugin, DecodeOutput, EncodeOutput } from '../../src/codecs/codec.js';
import { jsonPayload, parseJsonPayload } from '../../src/codecs/json-text.js';

const json: Codec = {
  name: 'json',
  contentFormats: [50],
  decodeUplink(bytes: Buffer): DecodeOutput {
    return { data: parseJsonPayload(bytes) };
  },
  encodeDownlink(data: unknown): EncodeOutput {
    return { bytes: jsonPayload(data), contentFormat: 50 };
  },
};

const plugin: CodecPlugin = {
  name: 'json',
  description: 'JSON text (Content-Format 50), strict UTF-8, nesting up to 64 levels',
  create: () => json,
};
export default plugin;
