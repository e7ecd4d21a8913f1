/** Where codec plugins come from: built-ins by name, user plugins from a module path or package. */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILTIN_CODEC_NAMES, isModulePath, pluginModule, type BuiltinCodecName } from '../config/codecs.js';
import type { CodecsConfig, Isolation } from '../config/codecs.js';
import { BUILTIN_CODECS } from './builtins.js';
import type { CodecPlugin } from './codec.js';

export function isBuiltin(name: string): name is BuiltinCodecName {
  return (BUILTIN_CODEC_NAMES as readonly string[]).includes(name);
}

/**
 * The import specifier for a plugin reference: a file: URL for paths (relative ones against `baseDir`), and
 * for a package the file it resolves to from `baseDir` (where operators install plugins), else the bare name.
 */
export function pluginSpecifier(ref: string, baseDir: string): string {
  if (ref.startsWith('file:')) return ref;
  if (isAbsolute(ref) || isModulePath(ref)) return pathToFileURL(resolve(baseDir, ref)).href;
  try {
    return pathToFileURL(createRequire(join(baseDir, 'package.json')).resolve(ref)).href;
  } catch {
    return ref;
  }
}

/** Checks a module's default export (or the module itself) is a codec plugin. */
export function asPlugin(mod: unknown, ref: string): CodecPlugin {
  const m = mod as { default?: unknown } | null;
  const p = (m?.default ?? m) as Partial<CodecPlugin> | null;
  if (!p || typeof p.create !== 'function' || typeof p.name !== 'string')
    throw new Error(`${ref} does not export a codec plugin (default export { name, create })`);
  return p as CodecPlugin;
}

/** A codec name as configured: a built-in, or a plugin with where it lives and how it runs. */
export type CodecSource =
  | { readonly kind: 'builtin'; readonly name: BuiltinCodecName }
  | {
      readonly kind: 'plugin';
      readonly name: string;
      readonly specifier: string;
      readonly isolation: Isolation;
    };

export function codecSource(name: string, config: CodecsConfig, baseDir: string): CodecSource | undefined {
  if (isBuiltin(name)) return { kind: 'builtin', name };
  const entry = config.plugins[name];
  if (entry === undefined) return undefined;
  const { module, isolation } = pluginModule(entry);
  return { kind: 'plugin', name, specifier: pluginSpecifier(module, baseDir), isolation };
}

/** Loads a codec plugin into this thread (built-ins, and plugins with isolation `none`). */
export async function loadPlugin(source: CodecSource): Promise<CodecPlugin> {
  if (source.kind === 'builtin') return (await BUILTIN_CODECS[source.name]()).default;
  let mod: unknown;
  try {
    mod = await import(source.specifier);
  } catch (err) {
    throw new Error(
      `cannot load codec plugin ${source.name} from ${source.specifier}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return asPlugin(mod, source.specifier);
}
