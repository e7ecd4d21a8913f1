/** The uplink path: identity, publisher acceptance before 2.04, 5.03 with Max-Age, the file sink. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage, type OptionEntry } from '../../src/coap/message.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { UdpClient } from '../support/udp-client.js';

let mid = 1;
function post(
  path: string,
  query: string[],
  body = 'x',
  extra: OptionEntry[] = [],
  code: number = Code.POST,
): Buffer {
  return encodeMessage({
    type: MessageType.CON,
    code,
    messageId: mid++,
    token: Buffer.from([7]),
    options: [[Option.URI_PATH, path], ...query.map((q) => [Option.URI_QUERY, q] as OptionEntry), ...extra],
    payload: Buffer.from(body),
  });
}

async function ask(c: UdpClient, port: number, data: Buffer): Promise<CoapMessage> {
  const b = await c.request(data, port, 3000);
  if (!b) throw new Error('no answer');
  return parseMessage(b) as CoapMessage;
}

describe('uplinks', () => {
  let gw: TestGateway;
  let c: UdpClient;

  beforeAll(async () => {
    gw = await startTestGateway();
    c = await UdpClient.open();
  });
  afterAll(async () => {
    await c.close();
    await gw.stop();
  });

  it('identifies a NoSec device by ?id= and publishes to cellgate/{thing}/{path}', async () => {
    const m = await ask(c, gw.coapPort, post('t', ['id=dev-2']));
    expect(m.code).toBe(Code.CHANGED);
    expect(gw.recorder.messages.at(-1)?.topic).toBe('cellgate/dev-2/t');
  });

  it('answers PUT uplinks too', async () => {
    const m = await ask(c, gw.coapPort, post('put', ['id=dev-2'], 'y', [], Code.PUT));
    expect(m.code).toBe(Code.CHANGED);
    expect(gw.recorder.messages.at(-1)?.envelope.method).toBe('PUT');
  });

  it('identifies a private-APN device by its source address', async () => {
    const apn = await UdpClient.open('127.0.0.7');
    try {
      const m = await ask(apn, gw.coapPort, post('meter', []));
      expect(m.code).toBe(Code.CHANGED);
      expect(gw.recorder.messages.at(-1)?.envelope.deviceId).toBe('apn-7');
    } finally {
      await apn.close();
    }
  });

  it('answers 4.01 to unknown or unnamed devices, and to PSK devices over NoSec, publishing nothing', async () => {
    const before = gw.recorder.messages.length;
    for (const q of [['id=nobody'], [], ['id=secure-1']]) {
      const m = await ask(c, gw.coapPort, post('t', q));
      expect(m.code).toBe(Code.UNAUTHORIZED);
      expect(m.payload.length).toBeGreaterThan(0);
    }
    expect(gw.recorder.messages.length).toBe(before);
  });

  it('answers 4.05 to other methods on uplink paths and 4.12 to If-Match', async () => {
    expect((await ask(c, gw.coapPort, post('t', ['id=dev-1'], '', [], Code.DELETE))).code).toBe(
      Code.METHOD_NOT_ALLOWED,
    );
    expect((await ask(c, gw.coapPort, post('t', ['id=dev-1'], '', [], Code.GET))).code).toBe(
      Code.METHOD_NOT_ALLOWED,
    );
    const m = await ask(c, gw.coapPort, post('t', ['id=dev-1'], 'x', [[Option.IF_MATCH, Buffer.from([1])]]));
    expect(m.code).toBe(Code.PRECONDITION_FAILED);
  });

  it('answers 5.03 with Max-Age when the publisher fails, and 2.04 again once it recovers', async () => {
    gw.recorder.failWithRetryAfter = 17;
    const before = gw.recorder.messages.length;
    const m = await ask(c, gw.coapPort, post('t', ['id=dev-1']));
    expect(m.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(m.uint(Option.MAX_AGE)).toBe(17);
    expect(gw.recorder.messages.length).toBe(before);
    const ready = await fetch(`http://127.0.0.1:${gw.ports.http}/readyz`);
    expect(ready.status).toBe(503);
    gw.recorder.failWithRetryAfter = undefined;
    expect((await ask(c, gw.coapPort, post('t', ['id=dev-1']))).code).toBe(Code.CHANGED);
  });
});

describe('the file sink', () => {
  it('writes one JSON line per uplink, acknowledged after the write', async () => {
    const gw = await startTestGateway({ configuredPublisher: true });
    const c = await UdpClient.open();
    try {
      for (let i = 0; i < 5; i++)
        expect((await ask(c, gw.coapPort, post(`p${i}`, ['id=dev-1'], `b${i}`))).code).toBe(Code.CHANGED);
      const lines = readFileSync(join(gw.dir, 'uplinks.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(5);
      expect(lines[3].topic).toBe('cellgate/thing-1/p3');
      expect(Buffer.from(lines[3].payload.raw, 'base64').toString()).toBe('b3');
      expect(lines[3].payload).toMatchObject({
        deviceId: 'dev-1',
        thing: 'thing-1',
        path: 'p3',
        transport: 'coap',
        decoded: null,
      });
    } finally {
      await c.close();
      await gw.stop();
    }
  });
});
