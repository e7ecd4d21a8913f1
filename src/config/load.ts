/** Loads the configuration: YAML file, then environment overrides, then the schema (defaults, validation). */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { isModulePath } from './codecs.js';
import { configSchema, type Config } from './schema.js';
import { parseYamlText } from './yaml-text.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadedConfig {
  config: Config;
  /** Folder relative paths in the config resolve against (the config file's folder). */
  baseDir: string;
  /** The file it came from, if any. */
  file?: string;
}

export const ENV_PREFIX = 'CELLGATE_';

/** `DTLS_PORT` → `dtlsPort`. */
function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Applies `CELLGATE_<SECTION>__<KEY>[__<KEY>…]=value` variables. Levels are separated by a double
 * underscore; each level is UPPER_SNAKE for a camelCase key. Values are read as YAML scalars or flow
 * collections (`5684`, `true`, `[a, b]`); quote a string that would read as something else.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || name === `${ENV_PREFIX}CONFIG`) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').map(camel);
    if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
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
  }
  return out;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.join('.') : '(top level)';
  return `${where}: ${issue.message}`;
}

/** Validates a raw object against the schema; throws a ConfigError naming each bad key. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.map(formatIssue);
    throw new ConfigError(`invalid ${source}:\n  ${lines.join('\n  ')}`);
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
  const config = parseConfig(applyEnvOverrides(raw, env), file ? `config ${file}` : 'config');
  resolvePaths(config, baseDir);
  return { config, baseDir, file: file ? resolve(file) : undefined };
}
