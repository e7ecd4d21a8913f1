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
import { Writable } from 'node:stream';
import { createLogger } from '../../src/ops/logger.js';
import { coapExchange } from '../support/libcoap.js';
import { startTestGateway } from '../support/gateway.js';
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
      expect(
        await registry.encodeDownlink(d, { version: 1, desired: { intervalMinutes: 15 } }, downlink()),
      ).toEqual({
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

  it('in the gateway: desired state reaches the device as the plugin’s bytes; a document it cannot encode is logged', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n'))
          if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const gw = await startTestGateway({
      devices: [{ id: 'meter-1', thing: 'meter-thing-1', codec: 'water-meter' }],
      config: { codecs: { plugins: { 'water-meter': join(dir, 'water-meter.mjs') } } },
      overrides: { log: createLogger('info', sink) },
    });
    const desire = (desired: unknown) =>
      fetch(`http://127.0.0.1:${gw.ports.http}/things/meter-thing-1/shadow?name=downlink`, {
        method: 'POST',
        body: JSON.stringify({ state: { desired } }),
      });
    const send = () =>
      coapExchange(
        'coap-client-notls',
        ['-m', 'post', '-e', 'x'],
        `coap://127.0.0.1:${gw.coapPort}/telemetry?id=meter-1`,
      );
    try {
      expect((await desire({ intervalMinutes: 15 })).status).toBe(200);
      const r = await send();
      expect(r.responses[0].code, r.output).toBe('2.04');
      expect(r.responses[0].options.get('Content-Format')).toEqual(['application/octet-stream']);
      expect(r.body.toString('hex')).toBe('01000f');
      expect(lines.filter((l) => String(l.msg).includes('could not encode'))).toEqual([]);

      // A setting the meter does not have: the device gets JSON, and the log says why, with the device.
      await desire({ intervalMinutes: null, colour: 'red' });
      const json = await send();
      expect(json.responses[0].options.get('Content-Format')).toEqual(['application/json']);
      expect(JSON.parse(json.body.toString())).toMatchObject({ desired: { colour: 'red' } });
      await send();
      const failures = lines.filter((l) => String(l.msg).includes('could not encode'));
      expect(failures).toEqual([
        expect.objectContaining({
          level: 'warn',
          deviceId: 'meter-1',
          thing: 'meter-thing-1',
          codec: 'water-meter',
          err: 'water-meter: desired state "colour" is not a setting of this meter',
          sent: 'json',
          msg: 'downlink: the device codec could not encode the document; sent JSON instead',
        }),
      ]); // once a minute per device at most: the second uplink added no line
    } finally {
      await gw.stop();
    }
  });
});
