/** Retransmitted requests over real UDP: answered identically, published once. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { encodeMessage, parseMessage, CoapMessage } from '../../src/coap/message.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { UdpClient } from '../support/udp-client.js';

function uplink(type: MessageType, mid: number, body: string): Buffer {
  return encodeMessage({
    type,
    code: Code.POST,
    messageId: mid,
    token: Buffer.from([1, 2, 3, 4]),
    options: [
      [Option.URI_PATH, 'retx'],
      [Option.URI_QUERY, 'id=dev-1'],
    ],
    payload: Buffer.from(body),
  });
}

describe('retransmissions', () => {
  let gw: TestGateway;
  let a: UdpClient;
  let b: UdpClient;

  beforeAll(async () => {
    gw = await startTestGateway();
    a = await UdpClient.open();
    b = await UdpClient.open();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await gw.stop();
  });

  it('the same CON three times gets three identical ACKs and one publish', async () => {
    const before = gw.recorder.messages.length;
    const data = uplink(MessageType.CON, 0x0101, 'con-once');
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await a.request(data, gw.coapPort));
    expect(answers.every((x) => x !== undefined)).toBe(true);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    const ack = parseMessage(answers[0] as Buffer) as CoapMessage;
    expect(ack.type).toBe(MessageType.ACK);
    expect(ack.code).toBe(Code.CHANGED);
    await new Promise((r) => setTimeout(r, 100));
    expect(gw.recorder.messages.length).toBe(before + 1);
  });

  it('the same NON three times gets one publish', async () => {
    const before = gw.recorder.messages.length;
    const data = uplink(MessageType.NON, 0x0202, 'non-once');
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await a.request(data, gw.coapPort));
    expect(answers[1]).toEqual(answers[0]);
    await new Promise((r) => setTimeout(r, 100));
    expect(gw.recorder.messages.length).toBe(before + 1);
  });

  it('the same Message ID from another endpoint is a new message', async () => {
    const before = gw.recorder.messages.length;
    const data = uplink(MessageType.CON, 0x0303, 'two-senders');
    await a.request(data, gw.coapPort);
    await b.request(data, gw.coapPort);
    await gw.recorder.waitFor(before + 2);
    expect(gw.recorder.messages.slice(before).map((m) => m.envelope.remote.port)).toEqual([a.port, b.port]);
  });

  it('a retransmission during a slow publish gets the empty ACK, then one separate response and one publish', async () => {
    const slow = await startTestGateway({ config: { coap: { piggybackWindowMs: 50 } } });
    slow.recorder.delayMs = 300;
    const c = await UdpClient.open();
    try {
      const data = uplink(MessageType.CON, 0x0404, 'slow');
      const first = parseMessage((await c.request(data, slow.coapPort)) as Buffer) as CoapMessage;
      expect([first.type, first.code]).toEqual([MessageType.ACK, Code.EMPTY]);
      const again = parseMessage((await c.request(data, slow.coapPort)) as Buffer) as CoapMessage;
      expect([again.type, again.code]).toEqual([MessageType.ACK, Code.EMPTY]);
      const sep = parseMessage((await c.next(2000)) as Buffer) as CoapMessage;
      expect([sep.type, sep.code]).toEqual([MessageType.CON, Code.CHANGED]);
      expect(sep.token).toEqual(Buffer.from([1, 2, 3, 4]));
      await c.send(
        encodeMessage({ type: MessageType.ACK, code: 0, messageId: sep.messageId }),
        slow.coapPort,
      );
      expect(await c.drain(300)).toEqual([]);
      expect(slow.recorder.messages).toHaveLength(1);
    } finally {
      await c.close();
      await slow.stop();
    }
  });
});
