/**
 * `cellgate codec …`: what an integrator runs while writing a codec plugin or a payload-formatter script.
 *
 *   cellgate codec list [--config FILE]
 *   cellgate codec test <codec> <hex | @file> [--options JSON] [--content-format N] [--path P] [--config FILE]
 *   cellgate codec encode <codec> <JSON | @file> [--options JSON] [--accept N] [--config FILE]
 *
 * `<codec>` is a built-in name, a plugin named in the config, or a plugin module path (`./my-codec.js`). The
 * codec runs exactly as in the gateway (same registry, sandbox and limits).
 */
import { readFile } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  codecsSchema,
  isModulePath,
  pluginModule,
  type CodecsConfig,
  type CodecSpec,
} from '../config/codecs.js';
import { UsageError } from '../config/errors.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Device } from '../devices/device.js';
import { silentLogger } from '../ops/logger.js';
import { CodecRegistry } from './registry.js';

export interface TextOut {
  write(text: string): unknown;
}

const USAGE = `usage:
  cellgate codec list [--config FILE]
  cellgate codec test <codec> <hex | @file> [--options JSON] [--content-format N] [--path P] [--config FILE]
  cellgate codec encode <codec> <JSON | @file> [--options JSON] [--accept N] [--config FILE]

<codec> is a built-in codec, a plugin named in the config, or a plugin module path (./my-codec.js).
codec encode takes a downlink document as the gateway hands it to codecs:
  {"version": 3, "desired": {"intervalMinutes": 15}, "commands": [{"id": 1, "data": "resetAlarms"}]}
`;

const DOCUMENT_KEYS = new Set(['version', 'desired', 'commands']);

/** Why `data` is not a downlink document `{ version?, desired?, commands? }`, or undefined. */
function documentProblem(data: unknown): string | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return 'it is not a JSON object';
  const d = data as Record<string, unknown>;
  const other = Object.keys(d).filter((k) => !DOCUMENT_KEYS.has(k));
  if (other.length)
    return (
      `it has ${other.map((k) => `"${k}"`).join(', ')}; desired state goes under "desired" ` +
      `(e.g. {"version":1,"desired":${JSON.stringify(Object.fromEntries(other.map((k) => [k, d[k]])))}})`
    );
  if (d.version !== undefined && !(Number.isInteger(d.version) && (d.version as number) >= 0))
    return '"version" is not a whole number';
  if (
    d.desired !== undefined &&
    (d.desired === null || typeof d.desired !== 'object' || Array.isArray(d.desired))
  )
    return '"desired" is not an object';
  if (
    d.commands !== undefined &&
    !(
      Array.isArray(d.commands) &&
      d.commands.every(
        (c: unknown) => c !== null && typeof c === 'object' && Number.isInteger((c as { id?: unknown }).id),
      )
    )
  )
    return '"commands" is not a list of { "id": <number>, "data": … }';
  return undefined;
}

function parseHex(text: string): Buffer {
  const hex = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new UsageError(`"${text}" is not hex (or @file)`);
  return Buffer.from(hex, 'hex');
}

async function readArg(arg: string): Promise<Buffer | null> {
  if (!arg.startsWith('@')) return null;
  try {
    return await readFile(arg.slice(1));
  } catch (err) {
    throw new UsageError(`cannot read ${arg.slice(1)}: ${(err as Error).message}`);
  }
}

function intOption(value: string | undefined, what: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new UsageError(`--${what} must be an integer 0..${max}`);
  return n;
}

function jsonOption(value: string | undefined, what: string): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new UsageError(`--${what} is not JSON: ${(err as Error).message}`);
  }
}

/** The config's codec section and base folder, with a module path given as the codec added as a plugin. */
async function setup(
  configFile: string | undefined,
  codec: string | undefined,
  optionsJson: string | undefined,
): Promise<{ config: CodecsConfig; baseDir: string; spec: CodecSpec | undefined }> {
  let config = codecsSchema.parse({});
  let baseDir = process.cwd();
  if (configFile) {
    const loaded = loadConfig(configFile);
    config = loaded.config.codecs;
    baseDir = loaded.baseDir;
  }
  if (codec === undefined) return { config, baseDir, spec: undefined };
  let name = codec;
  if (isModulePath(codec) || /\.(c|m)?js$/.test(codec)) {
    name = basename(codec, extname(codec))
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, '-')
      .replace(/^[^a-z]+/, '');
    name = `plugin-${name || 'module'}`;
    config = { ...config, plugins: { ...config.plugins, [name]: resolve(codec) } };
  }
  const options = jsonOption(optionsJson, 'options');
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options)))
    throw new UsageError('--options must be a JSON object');
  const spec: CodecSpec = options ? { name, options: options as Record<string, unknown> } : name;
  return { config, baseDir, spec };
}

/** The codecs, one per line: name (padded to the longest), description, and a plugin's module. */
async function list(registry: CodecRegistry, config: CodecsConfig, out: TextOut): Promise<void> {
  const { builtin, plugins } = registry.names();
  const width = Math.max(...builtin.map((n) => n.length), ...plugins.map((n) => n.length)) + 2;
  const describe = async (name: string): Promise<string> => {
    try {
      return oneLine((await registry.plugin(name)).description ?? '');
    } catch (err) {
      return `(cannot load: ${oneLine((err as Error).message)})`;
    }
  };
  out.write('built-in codecs:\n');
  for (const name of builtin) out.write(`  ${(name.padEnd(width) + (await describe(name))).trimEnd()}\n`);
  if (plugins.length === 0) return;
  out.write('plugins:\n');
  for (const name of plugins) {
    const { module, isolation } = pluginModule(config.plugins[name]);
    const description = await describe(name);
    out.write(
      `  ${name.padEnd(width)}${description ? `${description} — ` : ''}${module} (isolation: ${isolation})\n`,
    );
  }
}

/** A description on one line, at most 100 characters. */
function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}

/** Runs `cellgate codec <argv…>`; returns the exit code (0 done, 1 codec failure, 2 usage). */
export async function codecCommand(argv: string[], out: TextOut, err: TextOut): Promise<number> {
  let registry: CodecRegistry | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        options: { type: 'string', short: 'o' },
        'content-format': { type: 'string' },
        accept: { type: 'string' },
        path: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    const [command, codec, input] = positionals;
    if (values.help || command === undefined || command === 'help') {
      out.write(USAGE);
      return values.help || command === 'help' ? 0 : 2;
    }
    if (command === 'list') {
      if (positionals.length > 1) throw new UsageError('codec list takes no arguments');
      const { config, baseDir } = await setup(values.config, undefined, undefined);
      registry = new CodecRegistry({ config, baseDir, log: silentLogger() });
      await list(registry, config, out);
      return 0;
    }
    if (command !== 'test' && command !== 'encode') throw new UsageError(`unknown command "${command}"`);
    if (codec === undefined || input === undefined || positionals.length > 3)
      throw new UsageError(
        `codec ${command} takes <codec> and ${command === 'test' ? '<hex | @file>' : '<JSON | @file>'}`,
      );
    const { config, baseDir, spec } = await setup(values.config, codec, values.options);
    registry = new CodecRegistry({ config, baseDir, log: silentLogger() });
    const device: Device = { id: 'cli', thing: 'cli', ips: [], codec: spec };
    const report = await registry.prepare([device]);
    if (report.failed.length) {
      const error = report.failed[0].error;
      if (!/ codec options: /.test(error)) {
        err.write(`${error}\n`);
        return 1;
      }
      // Options come from --options here: a usage mistake. Show the shape, with the required names.
      const required = [...error.matchAll(/"([^"]+)" is required/g)].map((m) => `"${m[1]}": …`);
      const shape = `{${(required.length ? required : ['"name": value']).join(', ')}}`;
      err.write(
        `${error}\n` +
          `give them as JSON: cellgate codec ${command} ${codec} ${input} --options '${shape}' ` +
          '(docs/codecs.md lists each codec’s options)\n',
      );
      return 2;
    }
    if (command === 'test') {
      const bytes = (await readArg(input)) ?? parseHex(input);
      const result = await registry.decode(device, bytes, {
        deviceId: 'cli',
        thing: 'cli',
        path: (values.path ?? 'up').replace(/^\/+/, ''),
        contentFormat: intOption(values['content-format'], 'content-format', 65535),
        transport: 'coap',
        receivedAt: Date.now(),
      });
      for (const w of result.warnings ?? []) err.write(`warning: ${w}\n`);
      if (result.error !== undefined) {
        err.write(`decode error (${result.codec}): ${result.error}\n`);
        return 1;
      }
      out.write(`${JSON.stringify(result.data, null, 2)}\n`);
      return 0;
    }
    const text = (await readArg(input))?.toString('utf8') ?? input;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`downlink data is not JSON: ${(e as Error).message}`);
    }
    const problem = documentProblem(data);
    if (problem !== undefined)
      throw new UsageError(
        `${input} is not a downlink document: ${problem}. Codecs are handed ` +
          '{ "version", "desired", "commands" } (docs/codec-plugins.md)',
      );
    const result = await registry.encodeDownlink(device, data, {
      deviceId: 'cli',
      thing: 'cli',
      accept: intOption(values.accept, 'accept', 65535),
    });
    if (result.bytes === null) {
      err.write(`encode error (${result.codec}): ${result.error}\n`);
      return 1;
    }
    const cf = result.contentFormat === undefined ? '' : ` (Content-Format ${result.contentFormat})`;
    out.write(`${result.bytes.toString('hex')}\n`);
    err.write(`${result.bytes.length} bytes${cf}\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(`${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof ConfigError) {
      for (const line of e.problems) err.write(`cellgate: ${line}\n`);
      return 78;
    }
    err.write(`${(e as Error).message}\n`);
    return 1;
  } finally {
    await registry?.close();
  }
}
