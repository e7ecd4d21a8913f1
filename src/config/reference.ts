/** Renders the configuration reference (docs/configuration.md) from the schema, so the docs cannot drift. */
import { z } from 'zod';
import { configSchema } from './schema.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  additionalProperties?: JsonSchema | boolean;
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'any'}[]`;
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  if (t === 'integer' || t === 'number') {
    const range = [
      s.minimum !== undefined ? `≥ ${s.minimum}` : '',
      s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? `≤ ${s.maximum}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    return range ? `${t} (${range})` : t;
  }
  return t;
}

function cell(v: unknown): string {
  if (v === undefined) return '';
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return '`' + text.replace(/\|/g, '\\|') + '`';
}

function rows(prefix: string, s: JsonSchema, out: string[]): void {
  for (const [key, prop] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (prop.properties && !prop.oneOf) {
      rows(path, prop, out);
      continue;
    }
    out.push(
      `| \`${path}\` | ${typeOf(prop)} | ${cell(prop.default)} | ${(prop.description ?? '').replace(/\n/g, ' ')} |`,
    );
  }
}

export function renderConfigReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config by `npm run docs:config`; a test fails when it is out of date. -->',
    '',
    'cellgate reads one YAML file (`npx cellgate start --config FILE`). Every key is optional; the defaults are',
    'below. Relative paths resolve against the config file’s folder. Any key can be overridden from the',
    'environment: `CELLGATE_<SECTION>__<KEY>` with levels separated by a double underscore and each level in',
    'UPPER_SNAKE_CASE or spelled as the key, e.g. `CELLGATE_COAP__DTLS_PORT=5684`, `CELLGATE_PUBLISHER__TYPE=stdout`,',
    '`CELLGATE_DTLS__connectionIdLength=4`. Values are read as YAML (`5684` is a number, `true` a boolean, `[a, b]`',
    'a list). A bad value is reported naming the variable; a variable that names no key is an error listing the',
    'variables of that level. Mistakes end start-up with exit code 78, one line each. Variables without a double',
    'underscore (`CELLGATE_SERVICE_HOST`, which Kubernetes sets for a Service named cellgate) are not overrides.',
    '',
  ];
  for (const [section, s] of Object.entries(schema.properties ?? {})) {
    out.push(`## \`${section}\``, '');
    if (s.description) out.push(s.description, '');
    const variants = s.oneOf ?? s.anyOf;
    if (variants) {
      for (const v of variants) {
        const type = v.properties?.type?.const ?? v.properties?.type?.enum?.[0];
        out.push(
          `### \`${section}.type: ${String(type)}\``,
          '',
          '| key | type | default | description |',
          '|---|---|---|---|',
        );
        rows(section, v, out);
        out.push('');
      }
      continue;
    }
    out.push('| key | type | default | description |', '|---|---|---|---|');
    rows(section, s, out);
    out.push('');
  }
  return out.join('\n');
}
