/**
 * The `js` codec: a payload-formatter script as The Things Stack and ChirpStack run them —
 * `decodeUplink({ bytes, fPort, recvTime, variables }) → { data, warnings, errors }` and
 * `encodeDownlink({ data, variables }) → { bytes, fPort, warnings, errors }` (also the older `Decoder(bytes,
 * port)` / `Encoder(obj, port)` and ChirpStack v3 `Decode(fPort, bytes, variables)` / `Encode(...)` forms).
 * Options: `script` (path relative to the config file's folder), `fPort` (what the script sees as the
 * LoRaWAN port, default 1), `variables` (ChirpStack device variables). Scripts run in the sandbox workers with
 * time and memory limits.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { Codec, CodecEnv, CodecPlugin } from '../../src/codecs/codec.js';
import { parseCodecOptions } from '../../src/codecs/options.js';

/** Formatter scripts are small; a larger file is almost certainly the wrong one. */
const MAX_SCRIPT_BYTES = 4 * 1024 * 1024;

const optionsSchema = z.strictObject({
  script: z.string().min(1),
  fPort: z.number().int().min(0).max(255).default(1),
  variables: z.record(z.string(), z.string()).default({}),
});

function scriptFiles(options: Readonly<Record<string, unknown>>): string[] {
  return typeof options.script === 'string' ? [options.script] : [];
}

async function create(options: Readonly<Record<string, unknown>>, env: CodecEnv): Promise<Codec> {
  const o = parseCodecOptions('js', optionsSchema, options);
  if (!env.sandbox) throw new Error('js codec: no script sandbox in this host');
  const filename = resolve(env.baseDir, o.script);
  let source: Buffer;
  try {
    source = await readFile(filename);
  } catch (err) {
    throw new Error(`js codec: cannot read script ${filename}: ${(err as Error).message}`, { cause: err });
  }
  if (source.length > MAX_SCRIPT_BYTES) throw new Error(`js codec: script ${filename} is over 4 MiB`);
  try {
    return await env.sandbox.loadScript({
      name: 'js',
      source: source.toString('utf8'),
      filename,
      fPort: o.fPort,
      variables: o.variables,
    });
  } catch (err) {
    throw new Error(`js codec: script ${filename}: ${(err as Error).message}`, { cause: err });
  }
}

const plugin: CodecPlugin = {
  name: 'js',
  description: 'payload-formatter script (The Things Stack / ChirpStack decodeUplink, encodeDownlink)',
  create,
  files: scriptFiles,
};
export default plugin;
