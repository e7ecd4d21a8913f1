/**
 * What README.md and docs/ say about the configuration and the CLI holds: every config key they name exists
 * in the schema, the CLI is spelled one way in their commands, the error codes they list are those the source
 * gives, and a few statements that were once wrong stay right.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isConfigKey } from '../../src/config/load.js';
import { ROOT } from '../support/child-gateway.js';

const SECTIONS = 'coap|dtls|http|devices|publisher|codecs|downloads|downlink|admin|log|shutdown|runtime';

function docs(): [string, string][] {
  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)];
  return files.filter((f) => f.endsWith('.md')).map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]);
}

describe('README and docs', () => {
  it('name only config keys that exist', () => {
    const wrong: string[] = [];
    const key = new RegExp(`\`((?:${SECTIONS})(?:\\.[A-Za-z0-9]+)+)(?:[:\` ])`, 'g');
    // Helm values (devices.existingSecret) and file names (devices.yaml) look like keys too.
    const values = parse(readFileSync(join(ROOT, 'helm/cellgate/values.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const helmValue = (path: string[]) =>
      path.reduce<unknown>(
        (o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
        values,
      ) !== undefined;
    for (const [file, text] of docs()) {
      for (const m of text.matchAll(key)) {
        const path = m[1].split('.');
        if (/\.(ya?ml|json|md)$/.test(m[1]) || helmValue(path)) continue;
        if (!isConfigKey(path)) wrong.push(`${file}: ${m[1]}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(isConfigKey(['downlink', 'shadows', 'source'])).toBe(false);
    expect(isConfigKey(['downlink', 'shadow', 'source'])).toBe(true);
  });

  it('spell the CLI one way in their commands (npx cellgate …)', () => {
    const bare: string[] = [];
    for (const [file, text] of docs()) {
      let fence: string | undefined;
      for (const line of text.split('\n')) {
        const m = /^\s*```(\w*)/.exec(line);
        if (m) fence = fence === undefined ? m[1] : undefined;
        else if ((fence === 'sh' || fence === 'bash') && /^\s*cellgate /.test(line))
          bare.push(`${file}: ${line}`);
      }
    }
    expect(bare).toEqual([]);
  });

  it('do not promise line numbers for configuration errors, nor list downloads.dir among what the gateway writes', () => {
    const ops = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8').replace(/\s+/g, ' ');
    expect(ops).not.toMatch(/name the line, the entry and the key/);
    const writes = /everything the gateway writes \(([^)]*)\)/.exec(ops)?.[1];
    expect(writes).toBeDefined();
    expect(writes).not.toContain('downloads.dir');
    expect(ops).toMatch(/The gateway only reads `downloads\.dir`/);
  });

  it('list every error code the source gives, and no other (operations.md)', () => {
    const given = new Set<string>();
    const code = /(?:\bcode\s*[=:]\s*|\|\s*)'(CELLGATE_[A-Z_]+)'/g;
    for (const f of readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }))
      if (f.endsWith('.ts'))
        for (const m of readFileSync(join(ROOT, 'src', f), 'utf8').matchAll(code)) given.add(m[1]);
    const ops = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    const listed = new Set([...ops.matchAll(/^\| `(CELLGATE_[A-Z_]+)`/gm)].map((m) => m[1]));
    expect(given.size).toBeGreaterThan(5);
    expect([...listed].sort()).toEqual([...given].sort());
  });
});
