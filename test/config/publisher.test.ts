import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function file(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-pubcfg-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'cellgate.yaml'), yaml);
  return join(dir, 'cellgate.yaml');
}

describe('publisher configuration', () => {
  it('fills aws-iot defaults', () => {
    const p = parseConfig({
      publisher: { type: 'aws-iot', endpoint: 'abc-ats.iot.eu-west-1.amazonaws.com' },
    }).publisher;
    expect(p).toMatchObject({
      type: 'aws-iot',
      qos: 1,
      ack: 'after-publish',
      topic: 'cellgate/{thing}/{path}',
      connections: 64,
      concurrency: 256,
      requestTimeoutMs: 5000,
      deadlineMs: 10_000,
      queue: { maxEntries: 10_000 },
      retry: { maxAttempts: 4 },
      breaker: { failureThreshold: 20, openMs: 5000 },
      outbox: { dir: 'outbox', fsync: true, maxBytes: 1024 * 1024 * 1024 },
    });
  });

  it('fills mqtt defaults and keeps the other sinks as they were', () => {
    expect(parseConfig({ publisher: { type: 'mqtt' } }).publisher).toMatchObject({
      url: 'mqtt://127.0.0.1:1883',
      protocolVersion: 5,
      tls: { rejectUnauthorized: true },
    });
    expect(parseConfig({}).publisher).toMatchObject({
      type: 'file',
      path: 'uplinks.jsonl',
      ack: 'after-publish',
    });
  });

  it('refuses QoS 2, unknown keys and an unknown ack mode', () => {
    expect(() => parseConfig({ publisher: { type: 'aws-iot', qos: 2 } })).toThrow(ConfigError);
    expect(() => parseConfig({ publisher: { type: 'mqtt', tls: { certificate: 'x' } } })).toThrow(
      /certificate/,
    );
    expect(() => parseConfig({ publisher: { type: 'null', ack: 'later' } })).toThrow(/ack/);
  });

  it('resolves the outbox folder and TLS files against the config file, and takes the password from the environment', () => {
    const f = file(
      'publisher:\n  type: mqtt\n  ack: after-outbox\n  outbox: { dir: state/outbox }\n  tls: { ca: pki/ca.pem, cert: /etc/cellgate/c.pem, key: pki/k.pem }\n',
    );
    const { config, baseDir } = loadConfig(f, { CELLGATE_PUBLISHER__PASSWORD: 's3cret' });
    const p = config.publisher;
    if (p.type !== 'mqtt') throw new Error('not mqtt');
    expect(p.outbox.dir).toBe(join(baseDir, 'state/outbox'));
    expect(p.tls).toMatchObject({
      ca: join(baseDir, 'pki/ca.pem'),
      cert: '/etc/cellgate/c.pem',
      key: join(baseDir, 'pki/k.pem'),
    });
    expect(p.password).toBe('s3cret');
  });
});
