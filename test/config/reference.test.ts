import { readFileSync } from 'node:fs';
import { format } from 'prettier';
import { describe, expect, it } from 'vitest';
import { renderConfigReference } from '../../src/config/reference.js';

describe('configuration reference', () => {
  it('docs/configuration.md matches the schema (run `npm run docs:config` after changing it)', async () => {
    const expected = await format(renderConfigReference(), {
      parser: 'markdown',
      filepath: 'x.md',
      singleQuote: true,
      printWidth: 110,
    });
    expect(readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')).toBe(expected);
  });

  it('documents every key with a description', () => {
    const text = renderConfigReference();
    const rows = text.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows.length).toBeGreaterThan(20);
    for (const row of rows) expect(row.split(/(?<!\\)\|/)[4].trim(), row).not.toBe('');
  });
});
