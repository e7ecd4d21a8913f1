/**
 * CoAP over DTLS through the whole gateway against real, independent clients: libcoap's coap-client-openssl
 * and coap-client-gnutls with PSK. Uplinks (CON, Block1) are published exactly once with the exact bytes
 * and carry transport "coaps" and the PSK identity; downloads (Block2) are byte-exact; a wrong key or an
 * unknown identity gets nothing through and publishes nothing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../support/dtls-harness.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { coapClient } from '../support/libcoap.js';
import { prng, randomBytes } from '../support/prng.js';

const firmware = randomBytes(prng(9), 10_000);
const DEVICES = [
  { id: 'secure-1', thing: 'thing-s1', psk: { identity: 'secure-1', key: 'text:secretPSK' } },
  { id: 'secure-2', psk: { identity: 'id-of-secure-2', key: 'text:another key' } },
  { id: 'plain-1' },
];

let gw: TestGateway;
let work: string;
beforeAll(async () => {
  gw = await startTestGateway({ devices: DEVICES, files: { 'fw.bin': firmware } });
  work = mkdtempSync(join(tmpdir(), 'cellgate-dtls-client-'));
});
afterAll(async () => {
  await gw.stop();
  rmSync(work, { recursive: true, force: true });
});

const url = (path: string): string => `coaps://127.0.0.1:${gw.ports.dtls}/${path}`;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 200));

for (const client of ['coap-client-openssl', 'coap-client-gnutls']) {
  describe(client, () => {
    it('POSTs a CON uplink, published once with the exact bytes, transport coaps and the PSK identity', async () => {
      const before = gw.recorder.messages.length;
      const r = await coapClient(client, [
        '-m',
        'post',
        '-e',
        `t=21.5 via ${client}`,
        '-u',
        'secure-1',
        '-k',
        'secretPSK',
        '-B',
        '10',
        url('telemetry'),
      ]);
      expect(r.code).toBe(0);
      await gw.recorder.waitForExactly(before + 1);
      const m = gw.recorder.messages[before];
      expect(m.topic).toBe('cellgate/thing-s1/telemetry');
      expect(m.envelope).toMatchObject({
        deviceId: 'secure-1',
        thing: 'thing-s1',
        path: 'telemetry',
        method: 'POST',
        transport: 'coaps',
        pskIdentity: 'secure-1',
        coap: { type: 'CON' },
      });
      expect(gw.recorder.raws()[before]).toEqual(Buffer.from(`t=21.5 via ${client}`));
    });

    it('uploads 4.5 KB in 64-byte Block1 blocks, published once, whole', async () => {
      const body = randomBytes(prng(client.length), 4500);
      const file = join(work, `up-${client}.bin`);
      writeFileSync(file, body);
      const before = gw.recorder.messages.length;
      const r = await coapClient(client, [
        '-m',
        'post',
        '-b',
        '64',
        '-f',
        file,
        '-u',
        'secure-1',
        '-k',
        'secretPSK',
        '-B',
        '20',
        url('bulk'),
      ]);
      expect(r.code).toBe(0);
      await gw.recorder.waitForExactly(before + 1);
      expect(gw.recorder.raws()[before]).toEqual(body);
      expect(gw.recorder.messages[before].envelope).toMatchObject({
        transport: 'coaps',
        coap: { blocks: Math.ceil(4500 / 64) },
      });
    });

    it('downloads 10 KB in Block2 blocks byte-exact', async () => {
      const out = join(work, `fw-${client}.bin`);
      const r = await coapClient(client, [
        '-m',
        'get',
        '-b',
        '256',
        '-o',
        out,
        '-u',
        'id-of-secure-2',
        '-k',
        'another key',
        '-B',
        '20',
        url('fw/fw.bin'),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(out)).toEqual(firmware);
    });
  });
}

describe('refused clients', () => {
  it('a wrong key, an unknown identity and a device without a PSK get nothing through, publish nothing', async () => {
    const before = gw.recorder.messages.length;
    const failed = (reason: string) =>
      metricValue(gw.metrics, 'cellgate_dtls_handshakes_failed_total', { reason });
    const badKey = await failed('bad_key');
    const unknown = await failed('unknown_identity');
    for (const [identity, key, query] of [
      ['secure-1', 'not the key', ''],
      ['nobody', 'secretPSK', ''],
      ['plain-1', 'anything', '?id=plain-1'],
    ]) {
      const r = await coapClient('coap-client-openssl', [
        '-m',
        'post',
        '-e',
        'should not pass',
        '-u',
        identity,
        '-k',
        key,
        '-B',
        '3',
        url(`telemetry${query}`),
      ]);
      // The same alert for all three: nothing tells which identities exist.
      expect(r.stdout.toString() + r.stderr).toMatch(/alert read:fatal:decrypt error/);
    }
    await settle();
    expect(gw.recorder.messages.length).toBe(before);
    expect(await failed('bad_key')).toBe(badKey + 1);
    expect(await failed('unknown_identity')).toBe(unknown + 2);
  });
});
