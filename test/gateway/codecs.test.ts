/**
 * Codecs in the running gateway: a device with each codec posts an uplink over CoAP (in-process client and
 * libcoap's coap-client-notls) and the published envelope's `decoded` holds the expected JSON; a payload the
 * codec rejects, or a script that hangs, is still published with `raw` and a `decodeError`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { encodeMessage, parseMessage, type CoapMessage, type OptionEntry } from '../../src/coap/message.js';
import { encodeCbor } from '../../src/codecs/cbor-json.js';
import type { Envelope } from '../../src/publish/envelope.js';
import { FIXTURES } from '../codecs/support.js';
import { coapClient } from '../support/libcoap.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { UdpClient } from '../support/udp-client.js';

const ELSYS_CO2 = Buffer.from([0x01, 0x00, 0xe2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x06, 0x03, 0x08]);
const ELSYS_JSON = { temperature: 22.6, humidity: 41, light: 39, motion: 6, co2: 776 };
// cellgate.test.Telemetry { battery_mv: 3300, temperature_centi: -1234 }
const TELEMETRY = Buffer.from('08e41910a313', 'hex');

const DEVICES = [
  { id: 'plain' },
  { id: 'json-dev', codec: 'json' },
  { id: 'cbor-dev', codec: 'cbor' },
  { id: 'senml-dev', codec: 'senml' },
  {
    id: 'proto-dev',
    codec: {
      name: 'protobuf',
      options: { proto: join(FIXTURES, 'telemetry.proto'), type: 'cellgate.test.Telemetry', defaults: false },
    },
  },
  { id: 'js-dev', codec: { name: 'js', options: { script: join(FIXTURES, 'formatters/elsys.js') } } },
  { id: 'plugin-dev', codec: { name: 'iso', options: { scale: 3 } } },
  {
    id: 'mixed-dev',
    codec: 'json',
    paths: {
      bin: 'raw',
      'sensors/wind': { name: 'js', options: { script: join(FIXTURES, 'formatters/windsensor.js') } },
    },
  },
  { id: 'bad-js', codec: { name: 'js', options: { script: join(FIXTURES, 'formatters/misbehaving.js') } } },
];

let mid = 100;
function post(device: string, path: string, payload: Buffer, contentFormat?: number): Buffer {
  const options: OptionEntry[] = [
    ...path.split('/').map((p) => [Option.URI_PATH, p] as OptionEntry),
    [Option.URI_QUERY, `id=${device}`],
  ];
  if (contentFormat !== undefined) options.push([Option.CONTENT_FORMAT, contentFormat]);
  return encodeMessage({
    type: MessageType.CON,
    code: Code.POST,
    messageId: mid++,
    token: Buffer.from([mid & 0xff]),
    options,
    payload,
  });
}

describe('codecs in the gateway', () => {
  let gw: TestGateway;
  let client: UdpClient;
  let work: string;

  beforeAll(async () => {
    gw = await startTestGateway({
      devices: DEVICES,
      config: {
        // Generous limits: a slow machine must not turn a worker restart into a separate response.
        coap: { piggybackWindowMs: 5000 },
        codecs: {
          timeoutMs: 4000,
          plugins: { iso: join(FIXTURES, 'plugins/isolated.mjs') },
          sandbox: { callTimeoutMs: 100 },
        },
      },
    });
    client = await UdpClient.open();
    work = mkdtempSync(join(tmpdir(), 'cellgate-codec-gw-'));
  });
  afterAll(async () => {
    await client.close();
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** Posts an uplink, expects 2.04, and returns the envelope published for it. */
  async function uplink(
    device: string,
    path: string,
    payload: Buffer,
    contentFormat?: number,
  ): Promise<Envelope> {
    const before = gw.recorder.messages.length;
    const answer = await client.request(post(device, path, payload, contentFormat), gw.coapPort, 3000);
    expect(answer).toBeDefined();
    expect((parseMessage(answer as Buffer) as CoapMessage).code).toBe(Code.CHANGED);
    await gw.recorder.waitFor(before + 1);
    const envelope = gw.recorder.messages[before].envelope;
    expect(envelope.deviceId).toBe(device);
    expect(envelope.raw).toBe(payload.toString('base64'));
    return envelope;
  }

  it('raw by default: decoded is null, the bytes are in raw', async () => {
    const e = await uplink('plain', 'up', Buffer.from([1, 2, 3]));
    expect(e).toMatchObject({ codec: 'raw', decoded: null, contentFormat: null });
    expect(e.decodeError).toBeUndefined();
  });

  it('picks json, cbor or senml by Content-Format when the device names no codec', async () => {
    expect(await uplink('plain', 'up', Buffer.from('{"a":[1,2]}'), 50)).toMatchObject({
      codec: 'json',
      decoded: { a: [1, 2] },
      contentFormat: 50,
    });
    expect(await uplink('plain', 'up', encodeCbor({ t: 21.5 }), 60)).toMatchObject({
      codec: 'cbor',
      decoded: { t: 21.5 },
    });
    expect(await uplink('plain', 'up', Buffer.from('[{"n":"x","v":1,"t":1e9}]'), 110)).toMatchObject({
      codec: 'senml',
      decoded: [{ n: 'x', v: 1, t: 1e9 }],
    });
  });

  it('answers 4.15 to a Content-Format the device codec does not take, publishing nothing', async () => {
    const before = gw.recorder.messages.length;
    for (const [device, cf] of [
      ['json-dev', 60],
      ['cbor-dev', 50],
      ['senml-dev', 42],
    ] as const) {
      const answer = parseMessage(
        (await client.request(post(device, 'up', Buffer.from('{}'), cf), gw.coapPort, 3000)) as Buffer,
      ) as CoapMessage;
      expect(answer.code).toBe(Code.UNSUPPORTED_CONTENT_FORMAT);
      expect(answer.payload.toString()).toContain(String(cf));
    }
    // A path override decides for its path; a codec without a declared Content-Format takes any.
    expect(await uplink('mixed-dev', 'bin', Buffer.from([9]), 60)).toMatchObject({ codec: 'raw' });
    await new Promise((r) => setTimeout(r, 100));
    expect(gw.recorder.messages.length).toBe(before + 1);
  });

  it('decodes with each built-in codec a device names', async () => {
    expect(await uplink('json-dev', 'up', Buffer.from('{"on":true}'))).toMatchObject({
      codec: 'json',
      decoded: { on: true },
    });
    expect(await uplink('cbor-dev', 'up', Buffer.from('a2616101616280', 'hex'))).toMatchObject({
      codec: 'cbor',
      decoded: { a: 1, b: [] },
    });
    const senml = await uplink('senml-dev', 'up', Buffer.from('81a3006178020106f93c00', 'hex'), 112);
    expect(senml.codec).toBe('senml');
    // Relative time 1 s resolved against the time of reception.
    const received = new Date(senml.receivedAt).getTime() / 1000;
    expect(senml.decoded).toEqual([{ n: 'x', v: 1, t: received + 1 }]);
    expect(await uplink('proto-dev', 'up', TELEMETRY)).toMatchObject({
      codec: 'protobuf',
      decoded: { batteryMv: 3300, temperatureCenti: -1234 },
    });
    expect(await uplink('js-dev', 'up', ELSYS_CO2)).toMatchObject({ codec: 'js', decoded: ELSYS_JSON });
  });

  it('decodes with a user plugin module in the sandbox', async () => {
    expect(await uplink('plugin-dev', 'meter/1', Buffer.from([5, 6]))).toMatchObject({
      codec: 'iso',
      decoded: { sum: 11, path: 'meter/1', scale: 3 },
    });
  });

  it('uses the per-path codec', async () => {
    expect(await uplink('mixed-dev', 'bin', Buffer.from('{"no":"json"}'))).toMatchObject({
      codec: 'raw',
      decoded: null,
    });
    expect(await uplink('mixed-dev', 'sensors/wind', Buffer.from([2, 12]))).toMatchObject({
      codec: 'js',
      decoded: { direction: 'S', speed: 12 },
    });
    expect(await uplink('mixed-dev', 'other', Buffer.from('[1]'))).toMatchObject({
      codec: 'json',
      decoded: [1],
    });
  });

  it('publishes what a codec rejects with raw and a decodeError, and counts it', async () => {
    const e = await uplink('json-dev', 'up', Buffer.from('{"broken":'));
    expect(e).toMatchObject({ codec: 'json', decoded: null });
    expect(e.decodeError).toMatch(/^JSON: /);
    const thrown = await uplink('bad-js', 'up', Buffer.from([0xdd]));
    expect(thrown).toMatchObject({
      codec: 'js',
      decoded: null,
      decodeError: 'codec fault: formatter bug on purpose',
    });
    const text = await gw.metrics.metrics();
    expect(text).toMatch(/cellgate_codec_decode_failures_total\{codec="json",reason="error"\} 1/);
    expect(text).toMatch(/cellgate_codec_decode_failures_total\{codec="js",reason="exception"\} 1/);
    expect(text).toMatch(/cellgate_uplinks_total\{outcome="decode_error"\} 2/);
  });

  it('publishes the uplink of a hanging script with a decodeError and keeps serving', async () => {
    const e = await uplink('bad-js', 'up', Buffer.from([0xff]));
    expect(e).toMatchObject({ codec: 'js', decoded: null, decodeError: 'codec js ran longer than 100 ms' });
    expect(await uplink('js-dev', 'up', ELSYS_CO2)).toMatchObject({ decoded: ELSYS_JSON });
  });

  it('decodes uplinks from libcoap coap-client-notls', async () => {
    const file = join(work, 'elsys.bin');
    writeFileSync(file, ELSYS_CO2);
    const before = gw.recorder.messages.length;
    const url = `coap://127.0.0.1:${gw.coapPort}`;
    const js = await coapClient('coap-client-notls', [
      '-m',
      'post',
      '-f',
      file,
      '-B',
      '5',
      `${url}/telemetry?id=js-dev`,
    ]);
    expect(js.code).toBe(0);
    const cbor = join(work, 'reading.cbor');
    writeFileSync(cbor, encodeCbor({ temperature: 21.5, ok: true }));
    const cf = await coapClient('coap-client-notls', [
      '-m',
      'post',
      '-t',
      '60',
      '-f',
      cbor,
      '-B',
      '5',
      `${url}/up?id=plain`,
    ]);
    expect(cf.code).toBe(0);
    await gw.recorder.waitFor(before + 2);
    const [a, b] = gw.recorder.messages.slice(before).map((m) => m.envelope);
    expect(a).toMatchObject({ deviceId: 'js-dev', path: 'telemetry', codec: 'js', decoded: ELSYS_JSON });
    expect(b).toMatchObject({
      deviceId: 'plain',
      contentFormat: 60,
      codec: 'cbor',
      decoded: { temperature: 21.5, ok: true },
    });
  });
});
