/**
 * The `protobuf` codec (protobufjs): options `proto` (a .proto file or a list, relative to the config file's
 * folder) and `type` (the message type of uplinks, fully qualified). Uplinks become the message's JSON form
 * (proto3 JSON conventions: lowerCamelCase names, enums by name, 64-bit integers and bytes as strings).
 * Downlinks: a JSON object encoded as `downlinkType` (default: `type`).
 */
import { resolve } from 'node:path';
import protobuf from 'protobufjs';
import { z } from 'zod';
import type { Codec, CodecEnv, CodecPlugin, DecodeOutput, EncodeOutput } from '../../src/codecs/codec.js';
import { DecodeError } from '../../src/codecs/codec.js';
import { parseCodecOptions } from '../../src/codecs/options.js';

const optionsSchema = z.strictObject({
  proto: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  type: z.string().min(1),
  downlinkType: z.string().min(1).optional(),
  /** 64-bit integers as decimal strings (exact) or numbers (may lose digits beyond 2^53). */
  longs: z.enum(['string', 'number']).default('string'),
  enums: z.enum(['string', 'number']).default('string'),
  /** Include fields that hold their default value (proto3 leaves them out of the wire format). */
  defaults: z.boolean().default(true),
  /** Keep field names as written in the .proto file instead of lowerCamelCase. */
  keepCase: z.boolean().default(false),
});

function protoFiles(options: Readonly<Record<string, unknown>>): string[] {
  const proto = options.proto;
  if (typeof proto === 'string') return [proto];
  return Array.isArray(proto) ? proto.filter((p): p is string => typeof p === 'string') : [];
}

function lookup(root: protobuf.Root, name: string, files: string[]): protobuf.Type {
  try {
    return root.lookupType(name);
  } catch {
    throw new Error(`protobuf codec: no message type "${name}" in ${files.join(', ')}`);
  }
}

async function create(options: Readonly<Record<string, unknown>>, env: CodecEnv): Promise<Codec> {
  const o = parseCodecOptions('protobuf', optionsSchema, options);
  const files = protoFiles(o).map((f) => resolve(env.baseDir, f));
  let root: protobuf.Root;
  try {
    root = await new protobuf.Root().load(files, { keepCase: o.keepCase });
  } catch (err) {
    throw new Error(`protobuf codec: cannot load ${files.join(', ')}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const up = lookup(root, o.type, files);
  const down = o.downlinkType ? lookup(root, o.downlinkType, files) : up;
  const conversion: protobuf.IConversionOptions = {
    longs: o.longs === 'string' ? String : Number,
    enums: o.enums === 'string' ? String : undefined,
    bytes: String,
    defaults: o.defaults,
    json: true,
  };
  return {
    name: 'protobuf',
    decodeUplink(bytes: Buffer): DecodeOutput {
      let message: protobuf.Message;
      try {
        message = up.decode(bytes);
      } catch (err) {
        throw new DecodeError(`protobuf ${up.fullName.slice(1)}: ${(err as Error).message}`);
      }
      return { data: up.toObject(message, conversion) };
    },
    encodeDownlink(data: unknown): EncodeOutput {
      if (data === null || typeof data !== 'object' || Array.isArray(data))
        throw new DecodeError(`protobuf ${down.fullName.slice(1)}: a downlink is a JSON object`);
      let wire: Uint8Array;
      try {
        wire = down.encode(down.fromObject(data as Record<string, unknown>)).finish();
      } catch (err) {
        throw new DecodeError(`protobuf ${down.fullName.slice(1)}: ${(err as Error).message}`);
      }
      return { bytes: Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength), contentFormat: 42 };
    },
  };
}

const plugin: CodecPlugin = {
  name: 'protobuf',
  description: 'Protocol Buffers (protobufjs); options proto, type, downlinkType',
  create,
  files: protoFiles,
};
export default plugin;
