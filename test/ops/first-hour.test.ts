/**
 * What a new operator reads in the first hour, from the real process: the start-up line says what runs
 * where; an unknown device, a refused PSK handshake and a payload that does not decode are logged at info
 * with the id the device claimed (once a minute per device at most); a codec that cannot load names its
 * devices; the admin API warns about a thing no device uses; codec test names the options it needs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coapExchange } from '../support/libcoap.js';
import { startChildGateway, type ChildGateway, type LogLine } from '../support/child-gateway.js';
import { runCli } from '../support/cli.js';

describe('the first hour, as logged and answered by the real process', () => {
  let gw: ChildGateway;
  let dtlsPort: number;
  beforeAll(async () => {
    gw = await startChildGateway({
      devices: [
        { id: 'meter-1', thing: 'meter-thing-1', codec: 'json' },
        { id: 'secure-1', psk: { identity: 'secure-1', key: 'text:secretPSK' } },
        { id: 'lost-1', codec: 'no-such-plugin' },
      ],
      config: { publisher: { type: 'null' }, log: { level: 'info' } },
    });
    const ready = gw.logs.find((l) => l.msg === 'cellgate listening') as LogLine;
    dtlsPort = Number(String(ready.dtls).split(':').pop());
  });
  afterAll(() => gw.cleanup());

  const uplink = (query: string, payload = 'x') =>
    coapExchange(
      'coap-client-notls',
      ['-m', 'post', '-e', payload],
      `coap://127.0.0.1:${gw.coapPort}/telemetry?${query}`,
    );
  const lines = (msg: string) => gw.logs.filter((l) => l.msg.startsWith(msg));

  it('says on start-up what runs: config, version, listeners, where uplinks go, downlinks, admin API', () => {
    const ready = gw.logs.find((l) => l.msg === 'cellgate listening') as LogLine;
    expect(ready).toMatchObject({
      level: 'info',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      config: `${gw.dir}/cellgate.yaml`,
      devices: 3,
      uplinks: 'null',
      downlinks: 'shadow memory, commands memory',
      admin: 'loopback clients only (no credentials configured)',
    });
  });

  it('logs an unknown device at info with the id it claimed, once a minute per id', async () => {
    for (let i = 0; i < 3; i++) expect((await uplink('id=ghost-7')).responses[0].code).toBe('4.01');
    await gw.waitForLog((l) => l.msg.startsWith('uplink refused'));
    expect(lines('uplink refused')).toEqual([
      expect.objectContaining({
        level: 'info',
        claimedId: 'ghost-7',
        path: 'telemetry',
        msg: 'uplink refused: Unknown device',
      }),
    ]);
  });

  it('logs a payload the codec cannot decode at info, with the device, once a minute per device', async () => {
    for (let i = 0; i < 2; i++)
      expect((await uplink('id=meter-1', 'not-json')).responses[0].code).toBe('2.04');
    await gw.waitForLog((l) => l.msg.startsWith('uplink not decoded'));
    expect(lines('uplink not decoded')).toEqual([
      expect.objectContaining({
        level: 'info',
        deviceId: 'meter-1',
        thing: 'meter-thing-1',
        codec: 'json',
        decodeError: expect.stringMatching(/^JSON: /),
      }),
    ]);
  });

  it('logs refused PSK handshakes at info: the identity claimed, and the device when the key was wrong', async () => {
    const sim = (prefix: string) =>
      runCli(
        [
          'simulate',
          '--dtls',
          '--psk-key',
          'text:wrong',
          '--port',
          String(dtlsPort),
          '--id-prefix',
          prefix,
        ].concat(['--count', '2', '--progress-ms', '0']),
      );
    expect((await sim('secure-')).code).toBe(1);
    expect((await sim('nobody-')).code).toBe(1);
    await gw.waitForLog((l) => l.msg.includes('unknown PSK identity'));
    expect(lines('DTLS handshake refused')).toEqual([
      expect.objectContaining({
        level: 'info',
        reason: 'bad_key',
        deviceId: 'secure-1',
        pskIdentity: 'secure-1',
        msg: 'DTLS handshake refused: wrong key for this PSK identity',
      }),
      expect.objectContaining({
        level: 'info',
        reason: 'unknown_identity',
        pskIdentity: 'nobody-1',
        msg: 'DTLS handshake refused: unknown PSK identity',
      }),
    ]);
  });

  it('names the devices of a codec that cannot be loaded', () => {
    expect(lines('codec unavailable')).toEqual([
      expect.objectContaining({
        level: 'error',
        codec: 'no-such-plugin',
        deviceIds: ['lost-1'],
        msg: 'codec unavailable for device lost-1',
      }),
    ]);
  });

  it('accepts a downlink for a thing no device uses, with a warning in the answer', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`http://127.0.0.1:${gw.httpPort}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const typo = await post('/things/meter-thng-1/shadow?name=downlink', { state: { desired: { a: 1 } } });
    expect(typo.status).toBe(200);
    expect(typo.headers.get('warning')).toMatch(
      /^299 cellgate "no device in the registry has thing meter-thng-1/,
    );
    expect(((await typo.json()) as { warning?: string }).warning).toMatch(
      /no device in the registry has thing meter-thng-1/,
    );
    const command = await post('/things/meter-thng-1/commands', { data: 'reboot' });
    expect(command.status).toBe(201);
    expect(((await command.json()) as { warning?: string }).warning).toMatch(/meter-thng-1/);
    const ok = await post('/things/meter-thing-1/shadow?name=downlink', { state: { desired: { a: 1 } } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('warning')).toBe(null);
    expect(await ok.json()).not.toHaveProperty('warning');
  });
});

describe('cellgate codec test without the options a codec needs', () => {
  it('names the required options and how to give them (exit 2)', async () => {
    const r = await runCli(['codec', 'test', 'protobuf', '0801']);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'protobuf codec options: "proto" is required; "type" is required',
      `give them as JSON: cellgate codec test protobuf 0801 --options '{"proto": …, "type": …}' (docs/codecs.md lists each codec’s options)`,
    ]);
  });
});
