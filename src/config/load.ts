/** Loads the configuration: YAML file, then environment overrides, then the schema (defaults, validation). */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { isModulePath } from './codecs.js';
import { ConfigError, ENV_PREFIX, envVarFor, issueMessage } from './errors.js';
import { configSchema, type Config } from './schema.js';
import { parseYamlText } from './yaml-text.js';

export { ConfigError, ENV_PREFIX, envVarFor };

export interface LoadedConfig {
  config: Config;
  /** Folder relative paths in the config resolve against (the config file's folder). */
  baseDir: string;
  /** The file it came from, if any. */
  file?: string;
}

/** `DTLS_PORT` → `dtlsPort`; a segment already in camelCase (`connectionIdLength`) stays as it is. */
function camel(segment: string): string {
  if (/[a-z]/.test(segment) && /[A-Z]/.test(segment)) return segment;
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** What a schema node holds at the next level: the keys of an object (any union member), or anything. */
type Level = { keys: readonly string[]; child(key: string): z.ZodType | undefined } | 'any' | 'leaf';

/**
 * The schema under wrappers (default, optional, refinements) and pipes: the input side of a pipe, or its
 * output side when the input is a transform (`z.preprocess`).
 */
function unwrap(schema: z.ZodType): z.core.$ZodTypeDef {
  type Def = z.core.$ZodTypeDef & { innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType };
  let def = schema._zod.def as Def;
  for (;;) {
    if (def.innerType) def = def.innerType._zod.def as Def;
    else if (def.type === 'pipe' && def.in && def.out)
      def = (def.in._zod.def.type === 'transform' ? def.out : def.in)._zod.def as Def;
    else return def;
  }
}

function level(schema: z.ZodType): Level {
  const def = unwrap(schema) as z.core.$ZodTypeDef & {
    shape?: Record<string, z.ZodType>;
    options?: z.ZodType[];
  };
  if (def.type === 'record') return 'any';
  const shapes: Record<string, z.ZodType>[] = [];
  if (def.type === 'object' && def.shape) shapes.push(def.shape);
  else if (def.type === 'union' && def.options) {
    for (const o of def.options) {
      const od = unwrap(o) as typeof def;
      if (od.type === 'object' && od.shape) shapes.push(od.shape);
    }
  }
  if (shapes.length === 0) return 'leaf';
  const keys = [...new Set(shapes.flatMap((s) => Object.keys(s)))];
  return { keys, child: (key) => shapes.find((s) => key in s)?.[key] };
}

const normalise = (s: string) => s.replace(/_/g, '').toLowerCase();

/**
 * The config path a variable sets: each level matched against the schema's keys in any spelling
 * (`DTLS_PORT`, `dtlsPort`, `DTLSPORT`). Throws a ConfigError naming the variable when a level has no such
 * key.
 */
function envPath(name: string, segments: readonly string[]): string[] {
  const path: string[] = [];
  let schema: z.ZodType | undefined = configSchema;
  for (const segment of segments) {
    const l: Level = schema ? level(schema) : 'any';
    if (l === 'any') {
      path.push(camel(segment));
      schema = undefined;
      continue;
    }
    const where = path.length ? path.join('.') : 'the configuration';
    if (l === 'leaf')
      throw new ConfigError(`environment variable ${name}: ${where} is a value, it has no key "${segment}"`);
    const key = l.keys.find((k) => normalise(k) === normalise(segment));
    if (key === undefined) {
      const known = l.keys.map((k) => envVarFor([...path, k]));
      throw new ConfigError(
        `environment variable ${name}: ${where} has no key "${segment}"; ` +
          `the variables for its keys are ${known.join(', ')}`,
      );
    }
    path.push(key);
    schema = l.child(key);
  }
  return path;
}

/** Whether `path` (`['downlink', 'shadow', 'source']`) names a key of the configuration schema. */
export function isConfigKey(path: readonly string[]): boolean {
  let schema: z.ZodType | undefined = configSchema;
  for (const key of path) {
    const l: Level = schema ? level(schema) : 'any';
    if (l === 'any') {
      schema = undefined;
      continue;
    }
    if (l === 'leaf' || !l.keys.includes(key)) return false;
    schema = l.child(key);
  }
  return true;
}

/** Config paths set from the environment (`coap.port`) → the variable that set them. */
export type EnvSources = Map<string, string>;

/**
 * Applies `CELLGATE_<SECTION>__<KEY>[__<KEY>…]=value` variables (others without a double underscore are
 * not overrides and are left alone). Levels are separated by a double underscore; a level is written UPPER_SNAKE (`DTLS_PORT`) or as the key itself (`dtlsPort`). Values are
 * read as YAML scalars or flow collections (`5684`, `true`, `[a, b]`); quote a string that would read as
 * something else. `sources` receives which variable set which path. A variable naming no key throws a
 * ConfigError naming the variable.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  sources: EnvSources = new Map(),
): Record<string, unknown> {
  const out = structuredClone(raw);
  const problems: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || name === `${ENV_PREFIX}CONFIG`) continue;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    // An override names a section and a key: a variable without `__` is someone else's, such as the
    // CELLGATE_SERVICE_HOST and CELLGATE_PORT_5683_UDP that Kubernetes sets for a Service named cellgate.
    if (segments.length < 2) continue;
    if (segments.some((p) => p === '' || /^(__proto__|constructor|prototype)$/i.test(p))) continue;
    let path: string[];
    try {
      path = envPath(name, segments);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      continue;
    }
    let target: Record<string, unknown> = out;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next))
        target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(value);
    } catch {
      parsed = value;
    }
    target[path[path.length - 1]] = parsed ?? value;
    sources.set(path.join('.'), name);
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/** The variable that set `path` or a section holding it, if any. */
function envSourceOf(path: readonly PropertyKey[], sources: EnvSources): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const v = sources.get(path.slice(0, n).map(String).join('.'));
    if (v !== undefined) return v;
  }
  return undefined;
}

function issueLines(issue: z.core.$ZodIssue, source: string, sources: EnvSources): string[] {
  const keys = issue.path;
  if (issue.code === 'unrecognized_keys') {
    // One line per key, each blamed on the variable that added it or on the file.
    return issue.keys.map((k) => {
      const full = [...keys, k];
      const v = envSourceOf(full, sources);
      const where = full.map(String).join('.');
      if (v) return `environment variable ${v}: ${where} is not a config key`;
      // The file's key may be fine, and a variable changed the section (publisher.type) under it.
      const section = keys.map(String).join('.');
      const nearby = [...sources].filter(([p]) => section !== '' && p.startsWith(`${section}.`));
      const also = nearby.length ? ` (the environment sets ${nearby.map(([, n]) => n).join(', ')})` : '';
      return `${source}: ${where}: unknown key${also} (see docs/configuration.md)`;
    });
  }
  const where = keys.length ? keys.map(String).join('.') : '(top level)';
  const v = envSourceOf(keys, sources);
  const what = issueMessage(issue);
  return [v ? `environment variable ${v} (${where}): ${what}` : `${source}: ${where}: ${what}`];
}

/**
 * Validates a raw object against the schema; throws a ConfigError naming each bad key, and the environment
 * variable instead of the file for keys the environment set.
 */
export function parseConfig(raw: unknown, source = 'config', sources: EnvSources = new Map()): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new ConfigError(result.error.issues.flatMap((i) => issueLines(i, source, sources)));
  }
  return result.data;
}

export function resolveFrom(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Config fields holding file-system paths; they resolve against the config file's folder. */
function resolvePaths(config: Config, baseDir: string): void {
  config.devices.file = resolveFrom(baseDir, config.devices.file);
  config.downloads.dir = resolveFrom(baseDir, config.downloads.dir);
  const pub = config.publisher;
  if (pub.type === 'file') pub.path = resolveFrom(baseDir, pub.path);
  pub.outbox.dir = resolveFrom(baseDir, pub.outbox.dir);
  if (pub.type === 'mqtt') {
    const tls = pub.tls;
    if (tls.ca) tls.ca = resolveFrom(baseDir, tls.ca);
    if (tls.cert) tls.cert = resolveFrom(baseDir, tls.cert);
    if (tls.key) tls.key = resolveFrom(baseDir, tls.key);
  }
  const plugins = config.codecs.plugins;
  for (const [name, entry] of Object.entries(plugins)) {
    if (typeof entry === 'string') {
      if (isModulePath(entry)) plugins[name] = resolveFrom(baseDir, entry);
    } else if (isModulePath(entry.module)) entry.module = resolveFrom(baseDir, entry.module);
  }
  const state = config.state;
  if (state.encryptionKeyFile) state.encryptionKeyFile = resolveFrom(baseDir, state.encryptionKeyFile);
  for (const k of ['passwordFile', 'tlsCaFile'] as const)
    if (state.redis[k]) state.redis[k] = resolveFrom(baseDir, state.redis[k]);
  const dtls = config.dtls;
  if (dtls.certificate) {
    dtls.certificate.certFile = resolveFrom(baseDir, dtls.certificate.certFile);
    dtls.certificate.keyFile = resolveFrom(baseDir, dtls.certificate.keyFile);
  }
  if (dtls.trustAnchors) dtls.trustAnchors = resolveFrom(baseDir, dtls.trustAnchors);
  const admin = config.admin;
  if (admin.tokenFile) admin.tokenFile = resolveFrom(baseDir, admin.tokenFile);
  if (admin.sigv4.secretAccessKeyFile)
    admin.sigv4.secretAccessKeyFile = resolveFrom(baseDir, admin.sigv4.secretAccessKeyFile);
}

/** Loads a config file (or none: defaults only) with environment overrides applied. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let raw: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (file) {
    const abs = resolve(file);
    baseDir = dirname(abs);
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYamlText(text);
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
      throw new ConfigError(`config file ${file} must hold a mapping at the top level`);
    }
    raw = (doc as Record<string, unknown>) ?? {};
  }
  const sources: EnvSources = new Map();
  const config = parseConfig(
    applyEnvOverrides(raw, env, sources),
    file ? `config file ${file}` : 'config (defaults)',
    sources,
  );
  resolvePaths(config, baseDir);
  return { config, baseDir, file: file ? resolve(file) : undefined };
}
