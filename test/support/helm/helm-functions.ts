/**
 * The Helm and sprig functions the chart uses, with their Helm semantics: toYaml sorts keys and drops the
 * final newline, toJson sorts keys and escapes <, > and &, default and empty treat 0, false, "" and empty
 * collections as empty, mustMergeOverwrite does not let an empty value override (mergo), dig walks nested
 * maps. Every other function is unknown to the renderer and fails the render.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { goNumber, isMap, TemplateError, truthy, type Func, type Value } from './go-template.js';

/** sprig's strval: how a value becomes a string for string functions. */
function strval(v: Value): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean') return String(v);
  throw new TemplateError(`cannot use a ${Array.isArray(v) ? 'list' : 'map'} as a string`);
}

function num(v: Value, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TemplateError(`${what} needs a number`);
  return v;
}

/** YAML the way sigs.k8s.io/yaml writes it: keys sorted, YAML 1.1 scalars quoted, no trailing newline. */
export function toYaml(v: Value): string {
  if (v === null || v === undefined) return 'null';
  return stringify(v, { version: '1.1', sortMapEntries: true, lineWidth: 0, indent: 2 }).replace(/\n$/, '');
}

function sortKeys(v: Value): Value {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isMap(v))
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  return v;
}

function toJson(v: Value): string {
  return JSON.stringify(sortKeys(v) ?? null)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** fmt.Sprintf for the verbs %s %d %v %q %%. */
function printf(format: string, ...args: Value[]): string {
  let i = 0;
  return format.replace(/%([%sdvq])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) throw new TemplateError(`printf: missing argument for %${verb}`);
    const a = args[i++];
    if (verb === 'd') return String(Math.trunc(num(a, 'printf %d')));
    if (verb === 'q') return goQuote(strval(a));
    return strval(a);
  });
}

/** mergo.Merge(dst, src, WithOverride): maps merge deeply; a non-empty src value replaces dst's. */
function mergeInto(dst: Record<string, Value>, src: Record<string, Value>, override: boolean): void {
  for (const [k, sv] of Object.entries(src)) {
    const dv = dst[k];
    if (isMap(dv) && isMap(sv)) mergeInto(dv, sv, override);
    else if (!(k in dst) || dv === null || dv === undefined) dst[k] = structuredClone(sv);
    else if (override && truthy(sv)) dst[k] = structuredClone(sv);
  }
}

function compare(name: string, a: Value, b: Value): number {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) {
    throw new TemplateError(`${name}: incompatible types for comparison`);
  }
  const x = a as number | string;
  const y = b as number | string;
  return x < y ? -1 : x > y ? 1 : 0;
}

function eq(a: Value, ...rest: Value[]): boolean {
  for (const b of rest) {
    if (a === null || b === null || a === undefined || b === undefined) {
      if ((a ?? null) === (b ?? null)) return true;
      continue;
    }
    if (typeof a !== typeof b || typeof a === 'object') {
      throw new TemplateError('eq: incompatible types for comparison');
    }
    if (a === b) return true;
  }
  return false;
}

export const HELM_FUNCTIONS: Record<string, Func> = {
  // Logic and comparison (and / or are evaluated by the interpreter: they short-circuit).
  not: (v) => !truthy(v),
  eq: (a, ...rest) => eq(a, ...rest),
  ne: (a, b) => !eq(a, b),
  lt: (a, b) => compare('lt', a, b) < 0,
  le: (a, b) => compare('le', a, b) <= 0,
  gt: (a, b) => compare('gt', a, b) > 0,
  ge: (a, b) => compare('ge', a, b) >= 0,
  empty: (v) => !truthy(v),
  default: (d, ...given) => (given.length && truthy(given[0]) ? given[0] : d),
  required: (msg, v) => {
    if (v === null || v === undefined || v === '') throw new TemplateError(strval(msg));
    return v;
  },
  fail: (msg) => {
    throw new TemplateError(strval(msg));
  },
  // sprig's int (cast.ToInt): numbers truncated, numeric strings parsed, booleans 1/0, anything else 0.
  int: (v) => {
    if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : 0;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'string' && /^[-+]?\d+$/.test(v)) return Number.parseInt(v, 10);
    return 0;
  },
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (isMap(v)) return Object.keys(v).length;
    throw new TemplateError('len of a value without length');
  },
  // Strings.
  quote: (...vs) =>
    vs
      .filter((v: Value) => v !== null && v !== undefined)
      .map((v: Value) => goQuote(strval(v)))
      .join(' '),
  squote: (...vs) =>
    vs
      .filter((v: Value) => v !== null && v !== undefined)
      .map((v: Value) => `'${strval(v)}'`)
      .join(' '),
  print: (...vs) => vs.map(strval).join(''),
  printf: (f, ...args) => printf(strval(f), ...args),
  toString: (v: Value) => strval(v),
  trunc: (n, s) => {
    const str = strval(s);
    const c = num(n, 'trunc');
    return c >= 0 ? str.slice(0, c) : str.slice(str.length + c);
  },
  trim: (s) => strval(s).trim(),
  trimSuffix: (suf, s) => {
    const str = strval(s);
    const x = strval(suf);
    return x && str.endsWith(x) ? str.slice(0, -x.length) : str;
  },
  trimPrefix: (pre, s) => {
    const str = strval(s);
    const x = strval(pre);
    return x && str.startsWith(x) ? str.slice(x.length) : str;
  },
  replace: (old, nu, s) => strval(s).split(strval(old)).join(strval(nu)),
  lower: (s) => strval(s).toLowerCase(),
  upper: (s) => strval(s).toUpperCase(),
  contains: (sub, s) => strval(s).includes(strval(sub)),
  hasPrefix: (pre, s) => strval(s).startsWith(strval(pre)),
  indent: (n, s) => {
    const pad = ' '.repeat(num(n, 'indent'));
    return pad + strval(s).replace(/\n/g, '\n' + pad);
  },
  nindent: (n, s) => {
    const pad = ' '.repeat(num(n, 'nindent'));
    return '\n' + pad + strval(s).replace(/\n/g, '\n' + pad);
  },
  sha256sum: (s) => createHash('sha256').update(strval(s)).digest('hex'),
  b64enc: (s) => Buffer.from(strval(s)).toString('base64'),
  // Data.
  toYaml: (v) => toYaml(v),
  toJson: (v) => toJson(v),
  dict: (...kv) => {
    if (kv.length % 2) throw new TemplateError('dict needs key/value pairs');
    const out: Record<string, Value> = {};
    for (let i = 0; i < kv.length; i += 2) out[strval(kv[i])] = kv[i + 1];
    return out;
  },
  list: (...vs) => vs,
  hasKey: (m, k) => isMap(m) && strval(k) in m,
  set: (m, k, v) => {
    if (!isMap(m)) throw new TemplateError('set needs a map');
    m[strval(k)] = v;
    return m;
  },
  dig: (...args) => {
    if (args.length < 3) throw new TemplateError('dig needs keys, a default and a map');
    const map = args.at(-1);
    const dflt = args.at(-2);
    let cur: Value = map;
    for (const k of args.slice(0, -2)) {
      if (!isMap(cur) || !(strval(k) in cur)) return dflt;
      cur = cur[strval(k)];
    }
    return cur;
  },
  deepCopy: (v) => structuredClone(v ?? null),
  mustMergeOverwrite: (dst, ...srcs) => {
    if (!isMap(dst)) throw new TemplateError('mustMergeOverwrite needs maps');
    for (const s of srcs) {
      if (!isMap(s)) throw new TemplateError('mustMergeOverwrite needs maps');
      mergeInto(dst, s, true);
    }
    return dst;
  },
  merge: (dst, ...srcs) => {
    if (!isMap(dst)) throw new TemplateError('merge needs maps');
    for (const s of srcs) if (isMap(s)) mergeInto(dst, s, false);
    return dst;
  },
};
