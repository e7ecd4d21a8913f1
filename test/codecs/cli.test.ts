import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codecCommand } from '../../src/codecs/cli.js';
import { FIXTURES } from './support.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await codecCommand(
    argv,
    { write: (t: string) => (out += t) },
    { write: (t: string) => (err += t) },
  );
  return { code, out, err };
}

describe('cellgate codec (CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-codec-cli-'));
  const config = join(dir, 'cellgate.yaml');
  writeFileSync(
    config,
    `codecs:\n  plugins:\n    iso: ${join(FIXTURES, 'plugins/isolated.mjs')}\n  sandbox:\n    callTimeoutMs: 100\n`,
  );
  writeFileSync(
    join(dir, 'wind.js'),
    'function decodeUplink(i) { return { data: { knots: i.bytes[1], port: i.fPort } }; }',
  );
  writeFileSync(join(dir, 'payload.bin'), Buffer.from('{"t":21.5}'));
  writeFileSync(
    join(dir, 'levels.js'),
    'function decodeUplink(i) { return { data: {} }; }\n' +
      'function encodeDownlink(i) { var d = i.data; return { bytes: [d.desired.level, d.version, d.commands.length], fPort: 2 }; }',
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the built-in codecs and the configured plugins', async () => {
    const r = await run('list', '--config', config);
    expect(r.code).toBe(0);
    for (const name of ['raw', 'json', 'cbor', 'senml', 'protobuf', 'js'])
      expect(r.out).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(r.out).toContain('RFC 8428');
    expect(r.out).toMatch(/^plugins:\n {2}iso +\/.*isolated\.mjs \(isolation: worker\)$/m);
  });

  it('lists a plugin with its description, columns aligned to the longest name', async () => {
    const long = join(dir, 'long.yaml');
    writeFileSync(
      long,
      `codecs:\n  plugins:\n    a-rather-long-plugin-name: ${join(dir, 'described.mjs')}\n`,
    );
    writeFileSync(
      join(dir, 'described.mjs'),
      'export default { name: "x", description: "meter frames,\\n  version 2", create: () => ({ decodeUplink: () => ({ data: null }) }) };',
    );
    const r = await run('list', '--config', long);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    const at = (name: string) => lines.find((l) => l.startsWith(`  ${name} `)) as string;
    const column = at('a-rather-long-plugin-name').indexOf('meter frames');
    expect(at('a-rather-long-plugin-name').slice(column)).toBe(
      `meter frames, version 2 — ${join(dir, 'described.mjs')} (isolation: worker)`,
    );
    expect(at('json').indexOf('JSON text')).toBe(column);
  });

  it('decodes hex or a file and prints the JSON', async () => {
    expect(await run('test', 'cbor', 'a1 61 61 01')).toEqual({ code: 0, out: '{\n  "a": 1\n}\n', err: '' });
    expect(await run('test', 'json', `@${join(dir, 'payload.bin')}`)).toMatchObject({
      code: 0,
      out: '{\n  "t": 21.5\n}\n',
    });
    const senml = await run('test', 'senml', '81a3006178020106 1a3b9aca00', '--content-format', '112');
    expect(JSON.parse(senml.out)).toEqual([{ n: 'x', v: 1, t: 1e9 }]);
  });

  it('runs a script with options relative to the config folder', async () => {
    const r = await run(
      'test',
      'js',
      '0x0020',
      '--config',
      config,
      '--options',
      '{"script":"wind.js","fPort":2}',
    );
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(JSON.parse(r.out)).toEqual({ knots: 32, port: 2 });
  });

  it('runs a plugin given as a module path, in the sandbox', async () => {
    const r = await run('test', join(FIXTURES, 'plugins/isolated.mjs'), '0102', '--path', '/meter/1');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ sum: 3, path: 'meter/1', scale: 1 });
    const hang = await run('test', 'iso', 'ff', '--config', config);
    expect(hang).toEqual({ code: 1, out: '', err: 'decode error (iso): codec iso ran longer than 100 ms\n' });
  });

  it('encodes a downlink document and prints the hex', async () => {
    expect(await run('encode', 'cbor', '{"desired":{"a":1}}')).toEqual({
      code: 0,
      out: 'a16764657369726564a1616101\n',
      err: '13 bytes (Content-Format 60)\n',
    });
    // A payload-formatter script sees the document as input.data.
    const wind = await run(
      'encode',
      'js',
      '{"version":3,"desired":{"level":7},"commands":[{"id":1,"data":"x"}]}',
      '--options',
      `{"script":"${join(dir, 'levels.js')}"}`,
    );
    expect(wind).toEqual({ code: 0, out: '070301\n', err: '3 bytes (Content-Format 42)\n' });
  });

  it('takes only downlink documents, as the gateway hands them to codecs (exit 2)', async () => {
    const r = await run('encode', 'cbor', '{"intervalMinutes":15}');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^\{"intervalMinutes":15\} is not a downlink document: it has "intervalMinutes"; desired state goes under "desired" \(e\.g\. \{"version":1,"desired":\{"intervalMinutes":15\}\}\)/,
    );
    for (const bad of ['[1]', '{"version":"x"}', '{"desired":[1]}', '{"commands":[{"data":1}]}'])
      expect((await run('encode', 'cbor', bad)).code, bad).toBe(2);
  });

  it('says why decoding or encoding failed (exit 1)', async () => {
    expect(await run('test', 'json', '7b')).toEqual({
      code: 1,
      out: '',
      err: expect.stringMatching(/^decode error \(json\): JSON: /),
    });
    expect(await run('test', 'nope', '00')).toEqual({
      code: 1,
      out: '',
      err: expect.stringMatching(/unknown codec "nope"/),
    });
    expect(await run('test', 'js', '00', '--options', '{"script":"missing.js"}')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/cannot read script/),
    });
    expect(await run('encode', 'raw', '{"desired":{"a":1}}')).toMatchObject({
      code: 1,
      err: /raw codec encodes only bytes/,
    });
  });

  it('answers bad usage with the usage text (exit 2)', async () => {
    for (const argv of [
      [],
      ['frob'],
      ['test', 'cbor'],
      ['test', 'cbor', 'xyz'],
      ['test', 'cbor', '00', '--bogus'],
      ['test', 'cbor', '00', '--content-format', 'x'],
      ['test', 'cbor', '00', '--options', '[1]'],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err + r.out).toContain('usage:');
    }
    expect((await run('--help')).code).toBe(0);
  });
});
