/**
 * Codecs and downlinks over CoAP over DTLS, with libcoap's coap-client-openssl as the device: uplinks are
 * decoded by the device's codec (or by their Content-Format) exactly as over NoSec, and desired state and
 * commands set through the admin API arrive in the response to the next coaps uplink (JSON, CBOR), are
 * confirmed by echoing the ETag, and commands arrive once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as decodeCbor } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCbor } from '../../src/codecs/cbor-json.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { coapExchange } from '../support/libcoap.js';

const psk = (identity: string) => ({ identity, key: 'text:secretPSK' });
const DEVICES = [
  { id: 'cbor-s', codec: 'cbor', psk: psk('cbor-s') },
  { id: 'auto-s', psk: psk('auto-s') },
  { id: 'dl-s', thing: 'thing-dl', psk: psk('dl-s') },
  { id: 'cmd-s', thing: 'thing-cmd', psk: psk('cmd-s') },
];

describe('codecs and downlinks over coaps (coap-client-openssl)', () => {
  let gw: TestGateway;
  let work: string;
  const admin = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${gw.ports.http}${path}`, init);

  beforeAll(async () => {
    gw = await startTestGateway({ devices: DEVICES });
    work = mkdtempSync(join(tmpdir(), 'cellgate-coaps-'));
  });
  afterAll(async () => {
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function uplink(device: string, args: string[]) {
    const r = await coapExchange(
      'coap-client-openssl',
      ['-m', 'post', '-u', device, '-k', 'secretPSK', ...args],
      `coaps://127.0.0.1:${gw.ports.dtls}/telemetry`,
    );
    expect(r.code, r.output).toBe(0);
    return r;
  }

  function payloadFile(name: string, data: Buffer): string {
    const f = join(work, name);
    writeFileSync(f, data);
    return f;
  }

  it('decodes with the device codec, and by Content-Format for a device without one', async () => {
    const before = gw.recorder.messages.length;
    await uplink('cbor-s', ['-f', payloadFile('a.cbor', encodeCbor({ t: 21.5, ok: true }))]);
    await uplink('auto-s', ['-t', '110', '-e', '[{"bn":"dev/","n":"t","v":3},{"n":"h","v":40}]']);
    await gw.recorder.waitFor(before + 2);
    const [a, b] = gw.recorder.messages.slice(before).map((m) => m.envelope);
    expect(a).toMatchObject({
      transport: 'coaps',
      pskIdentity: 'cbor-s',
      codec: 'cbor',
      decoded: { t: 21.5, ok: true },
    });
    expect(b).toMatchObject({
      transport: 'coaps',
      codec: 'senml',
      contentFormat: 110,
      decoded: [
        { n: 'dev/t', v: 3 },
        { n: 'dev/h', v: 40 },
      ],
    });
  });

  it('delivers desired state in the uplink response (JSON, CBOR) until the device echoes the ETag', async () => {
    const res = await admin('/things/thing-dl/shadow?name=downlink', {
      method: 'POST',
      body: JSON.stringify({ state: { desired: { interval: 300, mode: 'eco' } } }),
    });
    expect(res.status).toBe(200);
    const { version } = (await res.json()) as { version: number };

    const json = await uplink('dl-s', ['-e', 'x', '-A', '50']);
    expect(json.responses[0].code).toBe('2.04');
    expect(JSON.parse(json.body.toString())).toEqual({ version, desired: { interval: 300, mode: 'eco' } });
    const etag = json.responses[0].options.get('ETag')?.[0] as string;
    expect(etag).toBeDefined();

    const cbor = await uplink('dl-s', ['-e', 'x', '-A', '60']);
    expect(decodeCbor(cbor.body)).toEqual({ version, desired: { interval: 300, mode: 'eco' } });

    await uplink('dl-s', ['-e', 'x', '-A', '50', '-O', `4,${etag}`]);
    await expect
      .poll(
        async () =>
          ((await (await admin('/things/thing-dl/shadow?name=downlink')).json()) as { state: object }).state,
      )
      .not.toHaveProperty('delta');
    const after = await uplink('dl-s', ['-e', 'x', '-A', '50']);
    expect(after.body.length).toBe(0);
  });

  it('delivers a queued command once it is confirmed, and not again', async () => {
    const res = await admin('/things/thing-cmd/commands', {
      method: 'POST',
      body: JSON.stringify({ data: { reboot: true } }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: number };
    const first = await uplink('cmd-s', ['-e', 'x', '-A', '50']);
    expect(JSON.parse(first.body.toString())).toEqual({ commands: [{ id, data: { reboot: true } }] });
    const etag = first.responses[0].options.get('ETag')?.[0] as string;
    await uplink('cmd-s', ['-e', 'x', '-A', '50', '-O', `4,${etag}`]);
    const listed = (await (await admin('/things/thing-cmd/commands')).json()) as {
      commands: { id: number; state: string }[];
    };
    expect(listed.commands.find((c) => c.id === id)?.state).toBe('delivered');
    const again = await uplink('cmd-s', ['-e', 'x', '-A', '50']);
    expect(again.body.length).toBe(0);
  });
});
