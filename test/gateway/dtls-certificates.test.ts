/**
 * Devices with certificates and raw public keys through the whole gateway against libcoap: coap-client-openssl
 * with an X.509 certificate (-c/-j/-C) and coap-client-gnutls with a raw public key (-M), each POSTing an
 * uplink (published once, with credential and fingerprint in the envelope) and downloading in Block2
 * blocks. Devices are provisioned in the device file by certificate fingerprint and by public key; a
 * certificate no device is provisioned with publishes nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPki, type Identity, type RawKey } from '../support/certificates.js';
import { metricValue } from '../support/dtls-harness.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { coapClient } from '../support/libcoap.js';
import { prng, randomBytes } from '../support/prng.js';

const firmware = randomBytes(prng(16), 6_000);
let pki: TestPki;
let gw: TestGateway;
let meter: Identity;
let sensor: RawKey;

beforeAll(async () => {
  pki = new TestPki();
  const server = pki.server();
  // libcoap sends its own certificate only (no chain): this one is issued by the root.
  meter = pki.device('meter-1', 'meter-1', { issuer: 'ca' });
  sensor = pki.rawKey('sensor-1');
  gw = await startTestGateway({
    devices: [
      {
        id: 'meter-1',
        thing: 'thing-meter-1',
        // As `openssl x509 -fingerprint -sha256` prints it.
        x509: { fingerprint: meter.fingerprint.toUpperCase().match(/../g)!.join(':') },
      },
      { id: 'sensor-1', rpk: { publicKey: sensor.publicKey } },
      { id: 'secure-1', psk: { identity: 'secure-1', key: 'text:secretPSK' } },
    ],
    config: {
      dtls: {
        certificate: { certFile: server.certFile, keyFile: server.keyFile },
        trustAnchors: pki.caFile,
        clientIdentity: 'fingerprint',
      },
    },
    files: { 'fw.bin': firmware },
  });
});
afterAll(async () => {
  await gw?.stop();
  pki?.close();
});

const url = (path: string): string => `coaps://127.0.0.1:${gw.ports.dtls}/${path}`;

const CLIENTS: [string, string, () => string[], Record<string, unknown>][] = [
  [
    'coap-client-openssl with an X.509 certificate (-c/-j/-C)',
    'coap-client-openssl',
    () => ['-c', meter.certFile, '-j', meter.keyFile, '-C', pki.caFile],
    { deviceId: 'meter-1', thing: 'thing-meter-1', credential: 'x509' },
  ],
  [
    'coap-client-gnutls with a raw public key (-M)',
    'coap-client-gnutls',
    () => ['-M', sensor.combinedFile],
    { deviceId: 'sensor-1', thing: 'sensor-1', credential: 'rpk' },
  ],
];

for (const [name, bin, credential, expected] of CLIENTS) {
  describe(name, () => {
    it('POSTs an uplink, published once with the credential kind and fingerprint', async () => {
      const before = gw.recorder.messages.length;
      const r = await coapClient(bin, [
        '-m',
        'post',
        '-e',
        `reading from ${bin}`,
        ...credential(),
        '-B',
        '10',
        url('telemetry'),
      ]);
      expect(r.code, r.stderr).toBe(0);
      await gw.recorder.waitForExactly(before + 1);
      const m = gw.recorder.messages[before];
      expect(m.envelope).toMatchObject({ ...expected, transport: 'coaps', path: 'telemetry' });
      expect(m.envelope.fingerprint).toBe(
        expected.credential === 'x509' ? meter.fingerprint : sensor.fingerprint,
      );
      expect(m.envelope.pskIdentity).toBeUndefined();
      expect(gw.recorder.raws()[before]).toEqual(Buffer.from(`reading from ${bin}`));
    });

    it('downloads 6 KB in Block2 blocks byte-exact', async () => {
      const out = join(gw.dir, `fw-${bin}.bin`);
      const r = await coapClient(bin, [
        '-m',
        'get',
        '-b',
        '256',
        '-o',
        out,
        ...credential(),
        '-B',
        '20',
        url('fw/fw.bin'),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(out)).toEqual(firmware);
    });
  });
}

it('a certificate no device is provisioned with gets nothing through and publishes nothing', async () => {
  const stranger = pki.device('stranger', 'stranger', { issuer: 'ca' });
  const before = gw.recorder.messages.length;
  await coapClient('coap-client-openssl', [
    '-m',
    'post',
    '-e',
    'nope',
    '-c',
    stranger.certFile,
    '-j',
    stranger.keyFile,
    '-C',
    pki.caFile,
    '-B',
    '3',
    url('telemetry'),
  ]);
  await new Promise((r) => setTimeout(r, 200));
  expect(gw.recorder.messages.length).toBe(before);
  expect(
    await metricValue(gw.metrics, 'cellgate_dtls_handshakes_failed_total', { reason: 'unmapped' }),
  ).toBeGreaterThanOrEqual(1);
});
