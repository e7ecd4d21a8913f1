/**
 * Uplinks across two replicas sharing Redis (`state.store: redis`), as a device behind a load balancer sees
 * them when the replica that had its flow dies: replica A is a real gateway process killed with SIGKILL,
 * replica B runs in-process.
 * - a CON that A published, retransmitted to B, is published by B under the same `messageId`;
 * - a Block1 upload cut by the crash restarts cleanly: its next block gets 4.08 on B, nothing of it is
 *   published, and the upload started over on B is published once;
 * - the last block of an upload A published, retransmitted to B, is answered 2.04 and not published again.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeBlock } from '../../src/coap/block-option.js';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage, type OptionEntry } from '../../src/coap/message.js';
import type { Envelope } from '../../src/publish/envelope.js';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { UdpClient } from '../support/udp-client.js';

const prefix = uniquePrefix('replica-dedup');
const sealingKey = randomBytes(32).toString('base64') + '\n';
const DEVICES = [{ id: 'dev-1', thing: 'thing-1' }];
const state = (keyFile: string) => ({
  state: {
    store: 'redis',
    redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
    encryptionKeyFile: keyFile,
  },
});

/** Block size exponent of the uploads: 64-byte blocks. */
const SZX = 2;
const BLOCK = 64;

let nextMid = 0x2000 + Math.floor(Math.random() * 0x4000);

function post(payload: Buffer, block?: { num: number; more: boolean }, mid = nextMid++): Buffer {
  const options: OptionEntry[] = [
    [Option.URI_PATH, 'upload'],
    [Option.URI_QUERY, 'id=dev-1'],
  ];
  if (block) options.push([Option.BLOCK1, encodeBlock(block.num, block.more, SZX)]);
  return encodeMessage({
    type: MessageType.CON,
    code: Code.POST,
    messageId: mid,
    token: Buffer.from([0xa0, mid >> 8, mid & 0xff]),
    options,
    payload,
  });
}

/** The blocks of `body` as datagrams, each with a Message ID of its own. */
function blocks(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let num = 0; num * BLOCK < body.length; num++) {
    const more = (num + 1) * BLOCK < body.length;
    out.push(post(body.subarray(num * BLOCK, (num + 1) * BLOCK), { num, more }));
  }
  return out;
}

function answer(bytes: Buffer | undefined): CoapMessage {
  expect(bytes, 'no answer').toBeDefined();
  const m = parseMessage(bytes as Buffer);
  if (!(m instanceof CoapMessage)) throw new Error('unparsable answer');
  return m;
}

function code(reply: Buffer | CoapMessage | undefined): string {
  const c = (reply instanceof CoapMessage ? reply : answer(reply)).code;
  return `${c >> 5}.${String(c & 31).padStart(2, '0')}`;
}

/** Envelopes the child replica published (its file sink). */
function publishedBy(a: ChildGateway): Envelope[] {
  const file = join(a.dir, 'uplinks.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { payload: Envelope }).payload);
}

async function waitPublished(a: ChildGateway, n: number): Promise<Envelope[]> {
  await expect.poll(() => publishedBy(a).length, { timeout: 5000 }).toBe(n);
  return publishedBy(a);
}

describe('uplinks across replicas sharing Redis', () => {
  let b: TestGateway;
  let a: ChildGateway | undefined;
  let device: UdpClient;

  const startA = async () => {
    a = await startChildGateway({
      config: {
        ...state('state.key'),
        publisher: { type: 'file', path: 'uplinks.jsonl' },
        log: { level: 'info' },
      },
      devices: DEVICES,
      files: { 'state.key': sealingKey },
    });
    return a;
  };
  const crash = async (gw: ChildGateway) => {
    gw.proc.kill('SIGKILL');
    expect((await gw.exited).signal).toBe('SIGKILL');
  };

  beforeAll(async () => {
    b = await startTestGateway({
      config: state('files/state.key'),
      devices: DEVICES,
      files: { 'state.key': sealingKey },
    });
    device = await UdpClient.open();
  });
  afterEach(async () => {
    await a?.cleanup();
    a = undefined;
  });
  afterAll(async () => {
    await device.close();
    await b.stop();
    const r = testRedis(prefix);
    await dropPrefix(r, prefix);
    await r.close();
  });

  it('a CON published by a replica that then died is published by the next one under the same messageId', async () => {
    const replicaA = await startA();
    const uplink = post(Buffer.from('{"seq":1,"t":21.5}'));
    // A publishes and answers; the device never hears the answer (the replica dies first, as it were).
    expect(code(await device.request(uplink, replicaA.coapPort))).toBe('2.04');
    const [first] = await waitPublished(replicaA, 1);
    await crash(replicaA);

    // The retransmission reaches B (the balancer moved the flow): published again, same id.
    const before = b.recorder.messages.length;
    expect(code(await device.request(uplink, b.coapPort))).toBe('2.04');
    await b.recorder.waitForExactly(before + 1);
    const again = b.recorder.messages[before].envelope;
    expect(again.messageId).toBe(first.messageId);
    expect(again.raw).toBe(first.raw);
    expect(again.coap).toEqual(first.coap);

    // A new uplink with the same body is another message.
    expect(code(await device.request(post(Buffer.from('{"seq":1,"t":21.5}')), b.coapPort))).toBe('2.04');
    await b.recorder.waitForExactly(before + 2);
    expect(b.recorder.messages[before + 1].envelope.messageId).not.toBe(first.messageId);
  });

  it('a Block1 upload cut by a crash gets 4.08 on the next replica, nothing half-published, and restarts cleanly', async () => {
    const replicaA = await startA();
    const body = randomBytes(3 * BLOCK + 8);
    const parts = blocks(body);
    expect(code(await device.request(parts[0], replicaA.coapPort))).toBe('2.31');
    expect(code(await device.request(parts[1], replicaA.coapPort))).toBe('2.31');
    await crash(replicaA);

    const before = b.recorder.messages.length;
    // The next block (a middle one) and the last one reach B, which holds nothing of the transfer.
    const middle = answer(await device.request(parts[2], b.coapPort));
    expect(code(middle)).toBe('4.08');
    expect(middle.uint(Option.BLOCK1)).toBe(encodeBlock(2, true, SZX));
    expect(middle.payload.toString()).toMatch(/no block-wise transfer/);
    const last = answer(await device.request(parts[3], b.coapPort));
    expect(code(last)).toBe('4.08');
    expect(last.uint(Option.BLOCK1)).toBe(encodeBlock(3, false, SZX));
    expect(last.payload.toString()).toMatch(/no block-wise transfer/);
    await new Promise((r) => setTimeout(r, 200));
    expect(b.recorder.messages.length).toBe(before);
    expect(publishedBy(replicaA)).toEqual([]);

    // The device starts over on B: published once, whole.
    const again = blocks(body);
    for (let i = 0; i < again.length - 1; i++)
      expect(code(await device.request(again[i], b.coapPort))).toBe('2.31');
    expect(code(await device.request(again[again.length - 1], b.coapPort))).toBe('2.04');
    await b.recorder.waitForExactly(before + 1);
    const env = b.recorder.messages[before].envelope;
    expect(Buffer.from(env.raw, 'base64')).toEqual(body);
    expect(env.coap?.blocks).toBe(4);
  });

  it('the last block of an upload a dead replica published is answered 2.04 by the next one, not published again', async () => {
    const replicaA = await startA();
    const body = randomBytes(2 * BLOCK + 30);
    const parts = blocks(body);
    expect(code(await device.request(parts[0], replicaA.coapPort))).toBe('2.31');
    expect(code(await device.request(parts[1], replicaA.coapPort))).toBe('2.31');
    const done = answer(await device.request(parts[2], replicaA.coapPort));
    expect(done.code).toBe(Code.CHANGED);
    const [published] = await waitPublished(replicaA, 1);
    expect(Buffer.from(published.raw, 'base64')).toEqual(body);
    await crash(replicaA);

    const before = b.recorder.messages.length;
    const recalled = answer(await device.request(parts[2], b.coapPort));
    expect(recalled.code).toBe(Code.CHANGED);
    expect(recalled.uint(Option.BLOCK1)).toBe(encodeBlock(2, false, SZX));
    await new Promise((r) => setTimeout(r, 200));
    expect(b.recorder.messages.length).toBe(before);
    const metrics = await (await fetch(`http://127.0.0.1:${b.ports.http}/metrics`)).text();
    expect(metrics).toMatch(/cellgate_dedup_store_operations_total\{outcome="recalled"\} 1\b/);

    // The same block sent as a new request (another Message ID) is not that exchange: 4.08.
    const fresh = post(body.subarray(2 * BLOCK), { num: 2, more: false });
    expect(code(await device.request(fresh, b.coapPort))).toBe('4.08');
  });
});
