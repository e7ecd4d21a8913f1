/** Malformed and hostile datagrams: each gets the RFC's answer or silence, and the gateway keeps serving. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBlock } from '../../src/coap/block-option.js';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage } from '../../src/coap/message.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { prng, randomBytes } from '../support/prng.js';
import { UdpClient } from '../support/udp-client.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(b: Buffer | undefined): CoapMessage {
  expect(b).toBeDefined();
  const m = parseMessage(b as Buffer);
  expect(m).toBeInstanceOf(CoapMessage);
  return m as CoapMessage;
}

describe('bad input', () => {
  let gw: TestGateway;
  let c: UdpClient;
  let mid = 0x7000;

  async function stillServes(): Promise<void> {
    const before = gw.recorder.messages.length;
    const ok = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: mid++,
      token: Buffer.from([9]),
      options: [
        [Option.URI_PATH, 'alive'],
        [Option.URI_QUERY, 'id=dev-1'],
      ],
      payload: Buffer.from('alive'),
    });
    const m = decode(await c.request(ok, gw.coapPort));
    expect(m.code).toBe(Code.CHANGED);
    expect(gw.recorder.messages.length).toBe(before + 1);
  }

  async function silence(data: Buffer): Promise<void> {
    await c.send(data, gw.coapPort);
    expect(await c.drain(100)).toEqual([]);
  }

  beforeAll(async () => {
    gw = await startTestGateway({ config: { coap: { blockwise: { maxBodyBytes: 2048 } } } });
    c = await UdpClient.open();
  });
  afterAll(async () => {
    await c.close();
    await gw.stop();
  });

  it('a truncated header is ignored', async () => {
    await silence(hex(''));
    await silence(hex('40'));
    await silence(hex('4001ab'));
    await stillServes();
  });

  it('a wrong version is ignored', async () => {
    await silence(hex('80 01 12 34'));
    await silence(hex('00 02 12 34'));
    await stillServes();
  });

  it('TKL 9-15 in a CON gets RST; in a NON, silence', async () => {
    for (let tkl = 9; tkl <= 15; tkl++) {
      const data = Buffer.concat([Buffer.from([0x40 | tkl, 0x02, 0x10, tkl]), Buffer.alloc(tkl)]);
      const m = decode(await c.request(data, gw.coapPort));
      expect(m.type).toBe(MessageType.RST);
      expect(m.messageId).toBe(0x1000 | tkl);
      await silence(Buffer.concat([Buffer.from([0x50 | tkl, 0x02, 0x10, tkl]), Buffer.alloc(tkl)]));
    }
    await stillServes();
  });

  it('option nibble 15 and a payload marker with no payload get RST', async () => {
    for (const data of [hex('40 02 20 01 f1 00'), hex('40 02 20 02 bf'), hex('40 02 20 03 b1 61 ff')]) {
      const m = decode(await c.request(data, gw.coapPort));
      expect(m.type).toBe(MessageType.RST);
      expect(m.messageId).toBe(data.readUInt16BE(2));
    }
    await stillServes();
  });

  it('an unknown critical option gets 4.02 and nothing is published', async () => {
    const before = gw.recorder.messages.length;
    const data = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: mid++,
      options: [
        [Option.URI_PATH, 'x'],
        [Option.URI_QUERY, 'id=dev-1'],
        [2049, Buffer.from('?')],
      ],
      payload: Buffer.from('p'),
    });
    const m = decode(await c.request(data, gw.coapPort));
    expect(m.code).toBe(Code.BAD_OPTION);
    expect(m.payload.toString()).toMatch(/2049/);
    expect(gw.recorder.messages.length).toBe(before);
    await stillServes();
  });

  it('an oversize Block1 upload gets 4.13 with Size1 and nothing is published', async () => {
    const before = gw.recorder.messages.length;
    const block = (num: number, more: boolean) =>
      encodeMessage({
        type: MessageType.CON,
        code: Code.POST,
        messageId: mid++,
        options: [
          [Option.URI_PATH, 'big'],
          [Option.URI_QUERY, 'id=dev-1'],
          [Option.BLOCK1, encodeBlock(num, more, 6)],
        ],
        payload: Buffer.alloc(more ? 1024 : 10, 1),
      });
    expect(decode(await c.request(block(0, true), gw.coapPort)).code).toBe(Code.CONTINUE);
    expect(decode(await c.request(block(1, true), gw.coapPort)).code).toBe(Code.CONTINUE);
    const m = decode(await c.request(block(2, false), gw.coapPort));
    expect(m.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect(m.uint(Option.SIZE1)).toBe(2048);
    expect(gw.recorder.messages.length).toBe(before);
    await stillServes();
  });

  it('unexpected ACKs, RSTs and responses never reach the gateway', async () => {
    await silence(hex('60 00 55 55'));
    await silence(hex('70 00 55 56'));
    await silence(hex('60 45 55 57 ff 41'));
    const m = decode(await c.request(hex('40 45 55 58'), gw.coapPort));
    expect(m.type).toBe(MessageType.RST);
    await stillServes();
  });

  it('random datagrams never stop it (fuzz), and its caches stay bounded', async () => {
    const rand = prng(0xbad);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 250; i++) {
        const data = randomBytes(rand, Math.floor(rand() * 80));
        if (rand() < 0.8 && data.length) data[0] = (data[0] & 0x3f) | 0x40;
        c.socket.send(data, gw.coapPort, '127.0.0.1');
      }
      await c.drain(20);
    }
    await stillServes();
    const stats = gw.endpoint.stats;
    expect(stats.dedupEntries).toBeLessThanOrEqual(gw.config.coap.dedup.maxEntries);
    const text = await gw.metrics.metrics();
    expect(text).toMatch(/cellgate_coap_rejected_total\{reason="format_error"\} \d+/);
  });
});
