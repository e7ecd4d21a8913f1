import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { readDeviceFile } from '../../src/devices/file-registry.js';

function file(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-config-'));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('config', () => {
  it('fills documented defaults', () => {
    const c = parseConfig({});
    expect(c.coap).toMatchObject({ bind: '0.0.0.0', port: 5683, dtlsPort: 5684 });
    expect(c.http).toEqual({ bind: '0.0.0.0', port: 8080 });
    expect(c.devices.file).toBe('devices.yaml');
    expect(c.publisher).toMatchObject({
      type: 'file',
      path: 'uplinks.jsonl',
      topic: 'cellgate/{thing}/{path}',
    });
    expect(c.downloads.dir).toBe('files');
    expect(c.coap.transmission).toMatchObject({ ackTimeoutMs: 2000, ackRandomFactor: 1.5, maxRetransmit: 4 });
    expect(c.runtime.heapGrowingPercent).toBe(50);
  });

  it('resolves relative paths against the config file folder', () => {
    const p = file('gw.yaml', 'devices: { file: d.yaml }\npublisher: { type: file, path: out/u.jsonl }\n');
    const { config, baseDir } = loadConfig(p, {});
    expect(config.devices.file).toBe(join(baseDir, 'd.yaml'));
    expect(config.publisher.type === 'file' && config.publisher.path).toBe(join(baseDir, 'out/u.jsonl'));
    expect(config.downloads.dir).toBe(join(baseDir, 'files'));
  });

  it('applies CELLGATE_ environment overrides, typed by YAML rules', () => {
    const raw = applyEnvOverrides(
      { coap: { port: 1 } },
      {
        CELLGATE_COAP__PORT: '5699',
        CELLGATE_COAP__DTLS_PORT: '5700',
        CELLGATE_COAP__TRANSMISSION__ACK_TIMEOUT_MS: '4000',
        CELLGATE_PUBLISHER__TYPE: 'stdout',
        CELLGATE_LOG__LEVEL: 'debug',
        OTHER: 'x',
      },
    );
    const c = parseConfig(raw);
    expect(c.coap.port).toBe(5699);
    expect(c.coap.dtlsPort).toBe(5700);
    expect(c.coap.transmission.ackTimeoutMs).toBe(4000);
    expect(c.publisher.type).toBe('stdout');
    expect(c.log.level).toBe('debug');
  });

  it('names the key and the problem in errors', () => {
    expect(() => parseConfig({ coap: { port: 'abc' } })).toThrow(/coap\.port: .*number/);
    expect(() => parseConfig({ coap: { port: 70000 } })).toThrow(/coap\.port/);
    expect(() => parseConfig({ coap: { prot: 1 } })).toThrow(/coap\.prot: unknown key/);
    expect(() => parseConfig({ publisher: { type: 'carrier-pigeon' } })).toThrow(/publisher\.type/);
    expect(() => parseConfig({ coap: { transmission: { ackRandomFactor: 0.5 } } })).toThrow(
      /coap\.transmission\.ackRandomFactor/,
    );
    expect(() => parseConfig({ coap: { port: 1 } })).not.toThrow();
  });

  it('reports unreadable and malformed files clearly', () => {
    expect(() => loadConfig('/nonexistent/cellgate.yaml', {})).toThrow(ConfigError);
    expect(() => loadConfig(file('bad.yaml', 'coap: [1, 2\n'), {})).toThrow(/not valid YAML/);
    expect(() => loadConfig(file('list.yaml', '- 1\n'), {})).toThrow(/mapping/);
  });
});

describe('device file', () => {
  it('reads devices with keys in hex, base64 and text, thing defaulting to id', () => {
    const p = file(
      'devices.yaml',
      [
        '- id: a',
        '  psk: { identity: a, key: "hex:73656372657450534b" }',
        '- id: b',
        '  thing: thing-b',
        '  psk: { identity: ib, key: "base64:c2VjcmV0UFNL" }',
        '- id: c',
        '  psk: { identity: ic, key: "text:secretPSK" }',
        '  codec: { name: cbor }',
        '  ip: [10.0.0.1, "::1"]',
      ].join('\n'),
    );
    const d = readDeviceFile(p);
    expect(d.map((x) => x.thing)).toEqual(['a', 'thing-b', 'c']);
    expect(d.every((x) => x.psk?.key.equals(Buffer.from('secretPSK')))).toBe(true);
    expect(d[2].ips).toEqual(['10.0.0.1', '::1']);
  });

  it('names the entry and key at fault', () => {
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  psk: { identity: a, key: "hex:zz" }\n'))).toThrow(
      /device #1 \(id "a"\): psk\.key: hex key is not hex/,
    );
    expect(() =>
      readDeviceFile(file('d.yaml', '- id: a\n- id: b\n  psk: { identity: x, key: "plain" }\n')),
    ).toThrow(/device #2 \(id "b"\): psk\.key/);
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  ip: 999.1.1.1\n'))).toThrow(
      /device #1 \(id "a"\): ip: not an IP address/,
    );
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  thing: "bad thing"\n'))).toThrow(
      /device #1 \(id "a"\): thing/,
    );
    expect(() => readDeviceFile(file('d.yaml', '- thing: x\n'))).toThrow(
      /device #1 \(no id\): id: missing \(expected string\)/,
    );
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  psk: { identity: a, key: "hex:abc" }\n'))).toThrow(
      /even number of hex digits/,
    );
  });
});
