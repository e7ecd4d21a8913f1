/**
 * A confirmable uplink over DTLS whose answer was lost, retransmitted after the device's flow moved to another
 * replica (a new NAT port, the session taken over through Redis): published there under the same
 * `messageId`, with no new handshake.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage } from '../../src/coap/message.js';
import { DtlsClientCore } from '../../src/dtls/client.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('replica-dedup-dtls');
const sealingKey = randomBytes(32).toString('base64');

describe('a DTLS uplink retransmitted to another replica', () => {
  const gateways: TestGateway[] = [];
  let socket: Socket | undefined;
  let target = 0;
  const core = new DtlsClientCore(
    { identity: 'secure-1', key: Buffer.from('secretPSK'), cid: Buffer.from([7, 7]), retransmitMs: 200 },
    (d) => socket?.send(d, target, '127.0.0.1'),
  );
  /** A new source port, as after a sleep behind a NAT. */
  const rebind = async () => {
    socket?.close();
    const s = createSocket('udp4');
    s.on('message', (m) => core.receive(m));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    socket = s;
  };
  /** Sends one CoAP message in a new record and waits for the answer to its Message ID. */
  const send = (request: Buffer, mid: number) =>
    new Promise<CoapMessage>((resolve, reject) => {
      const end = setTimeout(() => reject(new Error('no answer')), 4000);
      core.onData = (d) => {
        const m = parseMessage(d);
        if (m instanceof CoapMessage && m.messageId === mid) {
          clearTimeout(end);
          resolve(m);
        }
      };
      core.write(request);
    });

  const replica = async () => {
    const gw = await startTestGateway({
      config: {
        state: {
          store: 'redis',
          encryptionKeyFile: 'files/state.key',
          redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
        },
      },
      files: { 'state.key': sealingKey },
    });
    gateways.push(gw);
    return gw;
  };

  beforeAll(async () => {
    await rebind();
  });
  afterAll(async () => {
    socket?.close();
    for (const gw of gateways) await gw.stop();
    const r = testRedis(prefix);
    await dropPrefix(r, prefix);
    await r.close();
  });

  it('is published there under the same messageId, without a new handshake', async () => {
    const a = await replica();
    const b = await replica();
    target = a.ports.dtls as number;
    await core.handshake();
    const mid = 0x5a5a;
    const request = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: mid,
      token: Buffer.from([1, 2, 3, 4]),
      options: [[Option.URI_PATH, 'telemetry']],
      payload: Buffer.from('{"seq":42}'),
    });
    // a publishes and answers; the answer is lost on the way (the device never reads it).
    expect((await send(request, mid)).code).toBe(Code.CHANGED);
    await a.recorder.waitForExactly(1);
    const first = a.recorder.messages[0].envelope;

    // The device wakes behind a new port; the balancer sends its retransmission to b.
    await rebind();
    target = b.ports.dtls as number;
    expect((await send(request, mid)).code).toBe(Code.CHANGED);
    await b.recorder.waitForExactly(1);
    const again = b.recorder.messages[0].envelope;
    expect(again.messageId).toBe(first.messageId);
    expect(again.raw).toBe(first.raw);
    expect(again.coap).toEqual(first.coap);
    expect(core.handshakes).toBe(1);

    // Its next uplink is a new message.
    const next = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: mid + 1,
      token: Buffer.from([1, 2, 3, 5]),
      options: [[Option.URI_PATH, 'telemetry']],
      payload: Buffer.from('{"seq":42}'),
    });
    expect((await send(next, mid + 1)).code).toBe(Code.CHANGED);
    await b.recorder.waitForExactly(2);
    expect(b.recorder.messages[1].envelope.messageId).not.toBe(first.messageId);
  });
});
