/**
 * The architecture checks of `npm run lint` catch what they exist for: the layer rule (eslint.config.js)
 * reports an import up the layer order, given as virtual files to ESLint; the cycle check
 * (.dependency-cruiser.mjs) reports a cycle of type-only imports among fixture files.
 */
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

/** The layer rule's messages for `code` as the file `file`. */
async function layerProblems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: file });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('the layer rule', () => {
  it('reports the CoAP layer importing the gateway', async () => {
    const problems = await layerProblems(
      'src/coap/x.ts',
      "import { Gateway } from '../gateway/gateway.js';\nexport const g = Gateway;\n",
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("'../gateway/gateway.js' import is restricted");
    expect(problems[0]).toContain(
      'src/coap imports only its own files and collections, config, ops, transport',
    );
  });

  it.each([
    ...['transport', 'dtls', 'coap'].flatMap((low) =>
      ['gateway', 'publish', 'downlink', 'codecs', 'devices'].map((high) => [low, high]),
    ),
    ...['publish', 'downlink', 'codecs'].map((low) => [low, 'gateway']),
    ...['transport', 'devices', 'state', 'gateway', 'publish'].map((high) => ['ops', high]),
  ])('reports src/%s importing src/%s', async (low, high) => {
    const code = `import { x } from '../${high}/x.js';\nexport const y = x;\n`;
    expect(await layerProblems(`src/${low}/x.ts`, code)).toHaveLength(1);
  });

  it('counts type-only imports, re-exports and imports from deeper files', async () => {
    const code = [
      "import type { Device } from '../../devices/device.js';",
      "export type { Envelope } from '../../publish/envelope.js';",
      'export type D = Device;',
      '',
    ].join('\n');
    expect(await layerProblems('src/dtls/server/x.ts', code)).toHaveLength(2);
  });

  it('reports folders of one layer importing each other', async () => {
    const code = "import { x } from '../udp/x.js';\nexport const y = x;\n";
    expect(await layerProblems('src/coap/x.ts', code)).toHaveLength(1);
  });

  it('accepts imports down the layers and within the folder', async () => {
    const coap = [
      "import type { Peer } from '../transport/peer.js';",
      "import type { Logger } from '../ops/logger.js';",
      "import { parseMessage } from './message.js';",
      'export type T = [Peer, Logger, typeof parseMessage];',
      '',
    ].join('\n');
    expect(await layerProblems('src/coap/x.ts', coap)).toEqual([]);
    const dtls = [
      "import type { Peer } from '../../transport/peer.js';",
      "import type { SessionStore } from '../../state/session-store.js';",
      "import type { CipherSuite } from '../crypto/cipher-suites.js';",
      'export type T = [Peer, SessionStore, CipherSuite];',
      '',
    ].join('\n');
    expect(await layerProblems('src/dtls/server/x.ts', dtls)).toEqual([]);
  });

  it('keeps the codec plugins to the plugin API', async () => {
    const code = [
      "import type { CodecPlugin } from '../../src/codecs/codec.js';",
      "import type { Device } from '../../src/devices/device.js';",
      'export type T = [CodecPlugin, Device];',
      '',
    ].join('\n');
    const problems = await layerProblems('codecs/x/index.ts', code);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("'../../src/devices/device.js' import is restricted");
  });
});

describe('the cycle check', () => {
  it('reports a cycle of type-only imports', async () => {
    // The options `npm run lint` cruises src/ with, read from the same file.
    const options = await extractDepcruiseOptions('./.dependency-cruiser.mjs');
    const result = await cruise(['test/lint/fixtures/cycle'], options);
    const output = result.output;
    if (typeof output === 'string') throw new Error('expected a cruise result, not a report');
    const cycles = output.summary.violations.filter((v) => v.rule.name === 'no-cycle');
    expect(cycles.length).toBeGreaterThan(0);
    expect(cycles[0].cycle?.map((c) => c.name).sort()).toEqual([
      'test/lint/fixtures/cycle/reply.ts',
      'test/lint/fixtures/cycle/request.ts',
    ]);
    expect(output.summary.error).toBeGreaterThan(0);
  });
});
