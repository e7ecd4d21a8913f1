/**
 * Logs: JSON lines with levels and per-device context, and no key ever written — a gateway at trace level is
 * driven through everything that logs (uplinks, refusals, bad and good device-file reloads with keys inline
 * and in key files, objects holding keys logged on purpose), and its output is searched for the keys in
 * every form they could take.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Code } from '../../src/coap/constants.js';
import { loadConfig } from '../../src/config/load.js';
import { readDeviceFile } from '../../src/devices/file-registry.js';
import { startGateway, type RunningGateway } from '../../src/gateway/app.js';
import { createLogger, redactSecrets } from '../../src/ops/logger.js';
import { connectDtls } from '../support/dtls-client.js';
import { conUplink } from '../support/coap-uplink.js';
import { UdpClient } from '../support/udp-client.js';

const SECRETS = {
  hex: Buffer.from('HexSecret-0001'),
  base64: Buffer.from('B64Secret-0002'),
  text: Buffer.from('TextSecret-0003'),
  file: Buffer.from('FileSecret-0004'),
  changed: Buffer.from('NewSecret-00005'),
};

/** Every way a key could show up in a log line. */
function forms(key: Buffer): string[] {
  return [
    key.toString('utf8'),
    key.toString('hex'),
    key.toString('hex').toUpperCase(),
    key.toString('base64'),
    JSON.stringify([...key]).slice(1, -1), // Buffer#toJSON data
  ];
}

function devices(changedKey = false) {
  return [
    { id: 'meter-1', thing: 'meter-thing-1' },
    { id: 'hex-dev', psk: { identity: 'hex-id', key: `hex:${SECRETS.hex.toString('hex')}` } },
    { id: 'b64-dev', psk: { identity: 'b64-id', key: `base64:${SECRETS.base64.toString('base64')}` } },
    {
      id: 'text-dev',
      psk: { identity: 'text-id', key: `text:${(changedKey ? SECRETS.changed : SECRETS.text).toString()}` },
    },
    { id: 'file-dev', psk: { identity: 'file-id', keyFile: 'keys/file-dev' } },
  ];
}

describe('logs', () => {
  const lines: string[] = [];
  let dir: string;
  let gw: RunningGateway;
  let client: UdpClient;

  const uplink = (query: string) =>
    client.request(conUplink('telemetry', [query], '21.5'), gw.ports.coap as number, 3000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cellgate-logs-'));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'keys'));
    writeFileSync(join(dir, 'keys', 'file-dev'), `hex:${SECRETS.file.toString('hex')}\n`);
    writeFileSync(join(dir, 'devices.yaml'), stringify(devices()));
    writeFileSync(
      join(dir, 'cellgate.yaml'),
      stringify({
        coap: { bind: '127.0.0.1', port: 0, dtlsPort: 0 },
        http: { bind: '127.0.0.1', port: 0 },
        devices: { file: 'devices.yaml', watch: false },
        publisher: { type: 'null' },
        log: { level: 'trace' },
      }),
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const loaded = loadConfig(join(dir, 'cellgate.yaml'), {});
    gw = await startGateway(loaded, { log: createLogger('trace', sink) });
    client = await UdpClient.open();
  });

  afterAll(async () => {
    await client.close();
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes JSON lines with a level, an ISO time, a message and the service', async () => {
    await uplink('id=meter-1');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) {
      const o = JSON.parse(l) as Record<string, unknown>;
      expect(o).toMatchObject({ service: 'cellgate' });
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(o.level);
      expect(typeof o.msg).toBe('string');
      expect(new Date(o.time as string).toISOString()).toBe(o.time);
    }
  });

  it('puts the device on the lines about it', async () => {
    await uplink('id=meter-1');
    const published = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((o) => o.msg === 'uplink published');
    expect(published.length).toBeGreaterThan(0);
    expect(published.at(-1)).toMatchObject({
      level: 'debug',
      deviceId: 'meter-1',
      thing: 'meter-thing-1',
      path: 'telemetry',
      bytes: 4,
      topic: 'cellgate/meter-thing-1/telemetry',
    });
    const refused = await uplink('id=hex-dev'); // a PSK device must use DTLS
    expect(refused?.[1]).toBe(Code.UNAUTHORIZED);
    expect(lines.some((l) => l.includes('uplink refused: This device must use DTLS'))).toBe(true);
  });

  it('never writes a key: DTLS handshakes (good, wrong key, unknown identity), reloads (bad YAML next to keys, bad entries, changed keys), objects holding keys', async () => {
    // DTLS: a good handshake and an uplink in its session, a wrong key, an unknown identity.
    const dtlsPort = gw.ports.dtls as number;
    const ok = await connectDtls('127.0.0.1', dtlsPort, {
      identity: 'hex-id',
      key: SECRETS.hex,
      cid: Buffer.from([9]),
    });
    await ok.request(conUplink('secure'));
    ok.close();
    for (const [identity, key] of [
      ['b64-id', SECRETS.text],
      ['nobody', SECRETS.file],
    ] as const) {
      await expect(connectDtls('127.0.0.1', dtlsPort, { identity, key, retransmitMs: 50 })).rejects.toThrow();
    }
    expect(lines.some((l) => l.includes('"deviceId":"hex-dev"') && l.includes('uplink published'))).toBe(
      true,
    );

    const file = join(dir, 'devices.yaml');
    const good = stringify(devices());
    // A YAML syntax error on the line holding a key: the parser's message must not quote it.
    writeFileSync(
      file,
      good.replace(`key: hex:${SECRETS.hex.toString('hex')}`, `key: [hex:${SECRETS.hex.toString('hex')}`),
    );
    await gw.registry.reload();
    // A schema error in an entry with a key, and a key that is not in the notation.
    writeFileSync(
      file,
      good.replace('id: b64-dev', 'id: 42').replace(`text:${SECRETS.text}`, SECRETS.text.toString()),
    );
    await gw.registry.reload();
    // A key file that is not in the notation.
    writeFileSync(join(dir, 'keys', 'file-dev'), SECRETS.file.toString());
    await gw.registry.reload();
    writeFileSync(join(dir, 'keys', 'file-dev'), `hex:${SECRETS.file.toString('hex')}`);
    // A valid file with a changed key: the device's sessions end.
    writeFileSync(file, stringify(devices(true)));
    await gw.registry.reload();
    // Whole objects holding keys, logged on purpose, at several depths.
    gw.log.info({ device: gw.registry.get('text-dev') }, 'device');
    gw.log.info(
      { all: { devices: ['hex-dev', 'b64-dev', 'file-dev'].map((id) => gw.registry.get(id)) } },
      'devices',
    );
    gw.log.warn({ a: { b: { c: { d: { psk: { key: SECRETS.hex } } } } } }, 'deep');
    gw.log
      .child({ deviceId: 'x' })
      .error({ credentials: { secretAccessKey: SECRETS.base64.toString() } }, 'creds');

    const text = lines.join('\n');
    expect(text).toContain('device file rejected');
    expect(text).toMatch(/is not valid YAML: .* at line \d+, column \d+/);
    expect(text).toContain('device #3 (id 42): id');
    expect(text).toContain('a key is written hex:');
    expect(text).toContain('"removedIds":["text-dev"]');
    expect(text).toContain('[redacted]');
    for (const [name, key] of Object.entries(SECRETS)) {
      for (const f of forms(key)) expect(text.includes(f), `${name} key as ${f}`).toBe(false);
    }
  });

  it('does not quote keys in the errors that stop start-up either', () => {
    const p = join(dir, 'broken.yaml');
    writeFileSync(p, `- id: a\n  psk: { identity: a, key: hex:${SECRETS.hex.toString('hex')}\n- id: b\n`);
    expect(() => readDeviceFile(p)).toThrow(/line \d+, column \d+/);
    try {
      readDeviceFile(p);
    } catch (err) {
      for (const f of forms(SECRETS.hex)) expect((err as Error).message).not.toContain(f);
    }
  });

  it('redacts secret fields at any depth without touching the rest', () => {
    const o = { a: 1, list: [{ token: 'abcd', keep: 'x' }], nested: { Password: 'p', keyId: 'visible' } };
    expect(redactSecrets(o)).toEqual({
      a: 1,
      list: [{ token: '[redacted]', keep: 'x' }],
      nested: { Password: '[redacted]', keyId: 'visible' },
    });
    expect(o.list[0].token).toBe('abcd'); // the logged object itself is left alone
    const clean = { a: { b: [1, 2] } };
    expect(redactSecrets(clean)).toBe(clean);
  });
});
