/**
 * The `senml` codec: SenML packs (RFC 8428) in JSON (Content-Format 110) or CBOR (112), decoded into resolved
 * records. Without a SenML Content-Format the encoding is told by option `format` or by the first byte.
 * Downlinks: an array of records encoded as SenML CBOR when the request accepts 112 (or 60), JSON otherwise.
 */
import { z } from 'zod';
import type {
  Codec,
  CodecPlugin,
  DecodeOutput,
  DownlinkContext,
  EncodeOutput,
  UplinkContext,
} from '../../src/codecs/codec.js';
import { DecodeError } from '../../src/codecs/codec.js';
import { decodeCborMaps, encodeCbor } from '../../src/codecs/cbor-json.js';
import { jsonPayload, parseJsonPayload } from '../../src/codecs/json-text.js';
import { parseCodecOptions } from '../../src/codecs/options.js';
import { cborRecord, LABEL_CBOR, resolveSenml } from './resolve.js';

const optionsSchema = z.strictObject({
  format: z.enum(['auto', 'json', 'cbor']).default('auto'),
});

function isCbor(format: string, bytes: Buffer, contentFormat: number | undefined): boolean {
  if (contentFormat === 112 || contentFormat === 60) return true;
  if (contentFormat === 110 || contentFormat === 50) return false;
  if (format !== 'auto') return format === 'cbor';
  // A JSON pack starts with "[" (after optional white space); a CBOR pack with an array head (major type 4).
  const b = bytes[0];
  return b !== undefined && b >> 5 === 4;
}

function decodePack(bytes: Buffer, cbor: boolean): unknown {
  if (!cbor) return parseJsonPayload(bytes, 'SenML');
  const pack = decodeCborMaps(bytes);
  if (!Array.isArray(pack)) throw new DecodeError('SenML: a pack is an array of records');
  return pack.map(cborRecord);
}

function toCborRecord(rec: unknown, index: number): Map<number | string, unknown> {
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec))
    throw new DecodeError(`SenML record ${index + 1}: not an object`);
  const m = new Map<number | string, unknown>();
  for (const [label, value] of Object.entries(rec)) {
    const key = LABEL_CBOR.get(label);
    if (key === 8 && typeof value === 'string') m.set(key, Buffer.from(value, 'base64url'));
    else m.set(key ?? label, value);
  }
  return m;
}

function create(options: Readonly<Record<string, unknown>>): Codec {
  const { format } = parseCodecOptions('senml', optionsSchema, options);
  return {
    name: 'senml',
    contentFormats: [110, 112, 50, 60],
    decodeUplink(bytes: Buffer, ctx: UplinkContext): DecodeOutput {
      const pack = decodePack(bytes, isCbor(format, bytes, ctx.contentFormat));
      return { data: resolveSenml(pack, (ctx.receivedAt ?? Date.now()) / 1000) };
    },
    encodeDownlink(data: unknown, ctx: DownlinkContext): EncodeOutput {
      if (!Array.isArray(data)) throw new DecodeError('SenML: a downlink pack is an array of records');
      const cbor = ctx.accept === 112 || ctx.accept === 60 || (ctx.accept === undefined && format === 'cbor');
      if (cbor) return { bytes: encodeCbor(data.map(toCborRecord)), contentFormat: 112 };
      return { bytes: jsonPayload(data), contentFormat: 110 };
    },
  };
}

const plugin: CodecPlugin = {
  name: 'senml',
  description: 'SenML packs (RFC 8428, JSON 110 / CBOR 112) to resolved records',
  create,
};
export default plugin;
