/**
 * The example plugin (examples/codec-plugin) as an integrator deploys it: compiled to JavaScript, named in
 * the config, run in the sandbox by the registry and by `cellgate codec test`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import example from '../../examples/codec-plugin/src/index.js';
import type { CodecPlugin } from '../../src/codecs/codec.js';
import { codecCommand } from '../../src/codecs/cli.js';
import { codecsSchema } from '../../src/config/codecs.js';
import { CodecRegistry } from '../../src/codecs/registry.js';
import { device, downlink, hex, uplink } from './support.js';

// The example matches the plugin interface without importing it.
const asPlugin: CodecPlugin = example;

describe('example codec plugin, compiled and deployed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-example-plugin-'));
  const source = readFileSync(new URL('../../examples/codec-plugin/src/index.ts', import.meta.url), 'utf8');
  const js = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  writeFileSync(join(dir, 'water-meter.mjs'), js);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('decodes and encodes in the sandbox', async () => {
    expect(asPlugin.name).toBe('water-meter');
    const registry = new CodecRegistry({
      baseDir: dir,
      config: codecsSchema.parse({ plugins: { 'water-meter': './water-meter.mjs' } }),
    });
    try {
      const d = device({ name: 'water-meter', options: { unit: 'm3' } });
      expect((await registry.prepare([d])).failed).toEqual([]);
      expect(await registry.decode(d, hex('01 01 0001e240 04d2 0bb8'), uplink())).toEqual({
        codec: 'water-meter',
        data: { volume: 123.456, unit: 'm3', temperature: 12.34, batteryMv: 3000, alarms: ['leak'] },
        warnings: ['battery low: 3000 mV'],
      });
      expect(await registry.decode(d, hex('07'), uplink())).toEqual({
        codec: 'water-meter',
        data: null,
        error: 'water-meter: a frame is 10 bytes plus 2 per hour, not 1',
      });
      expect(await registry.encodeDownlink(d, { intervalMinutes: 15 }, downlink())).toEqual({
        codec: 'water-meter',
        bytes: Buffer.from([1, 0, 15]),
        contentFormat: 42,
      });
    } finally {
      await registry.close();
    }
  });

  it('runs under cellgate codec test', async () => {
    let out = '';
    let err = '';
    const code = await codecCommand(
      ['test', join(dir, 'water-meter.mjs'), '0100000003e8f830 0e10'],
      { write: (t: string) => (out += t) },
      { write: (t: string) => (err += t) },
    );
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(out)).toEqual({
      volume: 1000,
      unit: 'L',
      temperature: -20,
      batteryMv: 3600,
      alarms: [],
    });
  });
});
