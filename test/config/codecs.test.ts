import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

describe('config: codecs section', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-codecs-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has documented defaults', () => {
    const { codecs } = parseConfig({});
    expect(codecs).toEqual({
      timeoutMs: 500,
      maxPending: 10_000,
      plugins: {},
      sandbox: {
        workers: 1,
        maxHeapMb: 64,
        callTimeoutMs: 100,
        batchDelayMs: 0,
        maxBatch: 256,
        maxQueue: 10_000,
        maxQueueBytes: 16 * 1024 * 1024,
        maxOutputBytes: 64 * 1024,
        maxAllocationBytes: 1024 * 1024,
      },
    });
  });

  it('resolves plugin module paths against the config file folder, and leaves package names alone', () => {
    const file = join(dir, 'cellgate.yaml');
    writeFileSync(
      file,
      [
        'codecs:',
        '  plugins:',
        '    meter: ./plugins/meter.js',
        '    tracker: { module: ../shared/tracker.mjs, isolation: none }',
        '    vendor: "@acme/cellgate-codec"',
        '    abs: /opt/codecs/abs.js',
      ].join('\n'),
    );
    const { config } = loadConfig(file, {});
    expect(config.codecs.plugins).toEqual({
      meter: join(dir, 'plugins/meter.js'),
      tracker: { module: join(dir, '../shared/tracker.mjs'), isolation: 'none' },
      vendor: '@acme/cellgate-codec',
      abs: '/opt/codecs/abs.js',
    });
  });

  it('rejects a plugin that takes a built-in name, a bad name, bad limits, unknown keys', () => {
    expect(() => parseConfig({ codecs: { plugins: { json: './x.js' } } })).toThrow(
      /codecs\.plugins: a plugin cannot take a built-in codec name/,
    );
    expect(() => parseConfig({ codecs: { plugins: { 'My Codec': './x.js' } } })).toThrow(/lowercase/);
    expect(() => parseConfig({ codecs: { timeoutMs: 0 } })).toThrow(ConfigError);
    expect(() => parseConfig({ codecs: { sandbox: { maxHeapMb: 8 } } })).toThrow(
      /codecs\.sandbox\.maxHeapMb/,
    );
    expect(() =>
      parseConfig({ codecs: { plugins: { x: { module: './x.js', isolation: 'thread' } } } }),
    ).toThrow(/codecs\.plugins\.x/);
    expect(() => parseConfig({ codecs: { timeout: 5 } })).toThrow(/codecs/);
  });

  it('takes environment overrides', () => {
    const { config } = loadConfig(undefined, {
      CELLGATE_CODECS__SANDBOX__WORKERS: '2',
      CELLGATE_CODECS__TIMEOUT_MS: '250',
    });
    expect(config.codecs.sandbox.workers).toBe(2);
    expect(config.codecs.timeoutMs).toBe(250);
  });
});
