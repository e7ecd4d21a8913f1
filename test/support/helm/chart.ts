/**
 * Renders a Helm chart the way `helm template` does, within the template subset go-template.ts supports:
 * values.yaml coalesced with override values (maps merge, null deletes), checked against values.schema.json,
 * every file under templates/ parsed (defines shared), files not starting with `_` rendered with .Values,
 * .Chart, .Release, .Template and .Files, split into YAML documents, empty documents dropped.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { isMap, TemplateSet, type Value } from './go-template.js';
import { HELM_FUNCTIONS } from './helm-functions.js';

export interface Manifest {
  /** Template file it came from, e.g. `templates/deployment.yaml`. */
  source: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface Rendered {
  values: Record<string, Value>;
  manifests: Manifest[];
  notes: string;
}

export class ValuesError extends Error {
  override readonly name = 'ValuesError';
}

/** YAML as Kubernetes and Helm read it (YAML 1.1: yes/no/on/off are booleans). */
export function parseYaml11(text: string): unknown {
  return parse(text, { version: '1.1' });
}

/** Helm's coalescing of user values over chart defaults. */
export function coalesce(base: Record<string, Value>, over: Record<string, Value>): Record<string, Value> {
  const out: Record<string, Value> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = coalesce(out[k] as Record<string, Value>, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}

function chartMetadata(chartDir: string): Record<string, Value> {
  const c = parseYaml11(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, Value>;
  // Helm exposes Chart.yaml fields capitalised: .Chart.Name, .Chart.Version, .Chart.AppVersion.
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k[0].toUpperCase() + k.slice(1), v]));
}

/** Checks values against values.schema.json (JSON Schema draft 7), as helm install does. */
export function validateValues(chartDir: string, values: Record<string, Value>): void {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as object;
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  if (!validate(values)) {
    const lines = (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`);
    throw new ValuesError(`values don't meet the specifications of the schema:\n  ${lines.join('\n  ')}`);
  }
}

export function renderChart(
  chartDir: string,
  overrides: Record<string, Value> = {},
  release = { name: 'gw', namespace: 'iot' },
): Rendered {
  const defaults = parseYaml11(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, Value>;
  const values = coalesce(defaults ?? {}, overrides);
  validateValues(chartDir, values);
  const chart = chartMetadata(chartDir);
  const set = new TemplateSet(HELM_FUNCTIONS);
  const templatesDir = join(chartDir, 'templates');
  const files = walk(templatesDir).map((p) => ({ path: p, name: `${chart.Name}/${relative(chartDir, p)}` }));
  for (const f of files) set.add(f.name, readFileSync(f.path, 'utf8'));
  const top = (name: string) => ({
    Values: values,
    Chart: chart,
    Release: {
      Name: release.name,
      Namespace: release.namespace,
      Service: 'Helm',
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1,
    },
    Template: { Name: name, BasePath: `${chart.Name}/templates` },
    Files: {
      Get: (p: Value) => {
        try {
          return readFileSync(join(chartDir, String(p)), 'utf8');
        } catch {
          return '';
        }
      },
    },
  });
  const manifests: Manifest[] = [];
  let notes = '';
  for (const f of files) {
    const base = f.path.split('/').pop() as string;
    if (base.startsWith('_')) continue;
    const out = set.render(f.name, top(f.name));
    const source = relative(chartDir, f.path);
    if (base === 'NOTES.txt') {
      notes = out;
      continue;
    }
    for (const doc of parseAllDocuments(out, { version: '1.1' })) {
      if (doc.errors.length)
        throw new Error(`${source}: rendered YAML is invalid: ${doc.errors[0].message}\n${out}`);
      const obj = doc.toJS() as unknown;
      if (obj === null || obj === undefined) continue;
      if (!isMap(obj) || typeof obj.kind !== 'string' || typeof obj.apiVersion !== 'string') {
        throw new Error(`${source}: a rendered document is not a Kubernetes object:\n${out}`);
      }
      manifests.push({ ...(obj as unknown as Omit<Manifest, 'source'>), source } as Manifest);
    }
  }
  const seen = new Set<string>();
  for (const m of manifests) {
    const id = `${m.kind}/${m.metadata?.name}`;
    if (seen.has(id)) throw new Error(`two manifests are ${id}`);
    seen.add(id);
  }
  return { values, manifests, notes };
}
