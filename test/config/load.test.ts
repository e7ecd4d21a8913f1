/** Loading the configuration: documented defaults, paths, CELLGATE_ environment overrides, errors naming the key. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { tempFile as file } from '../support/temp-file.js';

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

  it('marks what it refuses CELLGATE_CONFIG_INVALID', () => {
    expect(() => loadConfig('/nonexistent/cellgate.yaml', {})).toThrow(
      expect.objectContaining({ code: 'CELLGATE_CONFIG_INVALID' }),
    );
    expect(() => parseConfig({ coap: { prot: 1 } })).toThrow(
      expect.objectContaining({ code: 'CELLGATE_CONFIG_INVALID' }),
    );
  });

  it('reports unreadable and malformed files clearly', () => {
    expect(() => loadConfig('/nonexistent/cellgate.yaml', {})).toThrow(ConfigError);
    expect(() => loadConfig(file('bad.yaml', 'coap: [1, 2\n'), {})).toThrow(/not valid YAML/);
    expect(() => loadConfig(file('list.yaml', '- 1\n'), {})).toThrow(/mapping/);
  });
});
