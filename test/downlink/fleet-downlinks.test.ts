/**
 * Downlinks across replicas with nothing but `state.store: redis` configured (no `downlink` keys): the shadow
 * source and the command queues follow the shared store. Desired state set through one replica's admin API
 * reaches the device on the other; a command one replica delivers and the device confirms on the other is
 * delivered once, and neither replica offers it again. The device is libcoap's coap-client-notls.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBlock, encodeBlock } from '../../src/coap/block-option.js';
import { Code, ContentFormat, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage, type OptionEntry } from '../../src/coap/message.js';
import { UdpClient } from '../support/udp-client.js';
import { jsonUplink } from '../support/downlink.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('fleet-downlinks');

interface CommandView {
  id: number;
  state: string;
  attempts: number;
}

describe('downlinks across replicas (state.store: redis)', () => {
  let a: TestGateway;
  let b: TestGateway;

  const admin = async (gw: TestGateway, path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${gw.ports.http}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    return (await res.json()) as Record<string, unknown>;
  };
  const uplink = (gw: TestGateway, device: string, ...extra: string[]) =>
    jsonUplink(gw.coapPort, `telemetry?id=${device}`, extra);
  const commands = async (gw: TestGateway, thing: string) =>
    (await admin(gw, `/things/${thing}/commands`)).commands as CommandView[];
  const metric = async (gw: TestGateway, line: RegExp) => {
    const text = await (await fetch(`http://127.0.0.1:${gw.ports.http}/metrics`)).text();
    return Number(text.match(line)?.[1] ?? 0);
  };

  beforeAll(async () => {
    const key = randomBytes(32).toString('hex');
    const config = {
      state: {
        store: 'redis',
        redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
        encryptionKeyFile: 'files/state.key',
      },
      // Long enough that only the change feed can make a replica see another's writes in time.
      downlink: { cache: { ttlMs: 60_000 } },
    };
    const devices = [
      { id: 'fleet-1', thing: 'fleet-thing-1' },
      { id: 'fleet-2', thing: 'fleet-thing-2' },
      { id: 'fleet-3', thing: 'fleet-thing-3' },
    ];
    a = await startTestGateway({ config, devices, files: { 'state.key': key } });
    b = await startTestGateway({ config, devices, files: { 'state.key': key } });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    const r = testRedis(prefix);
    await dropPrefix(r, prefix);
    await r.close();
  });

  it('uses the shared store for shadows and command queues', () => {
    for (const gw of [a, b]) {
      expect(gw.downlinks?.commands.kind).toBe('redis');
      expect(gw.downlinks?.shadows.constructor.name).toBe('RedisShadowSource');
    }
  });

  it('desired state set through one replica’s admin API reaches the device on the other', async () => {
    // b has cached "nothing pending" for this thing, for a minute.
    expect((await uplink(b, 'fleet-1')).doc).toBeUndefined();
    const { version } = (await admin(a, '/things/fleet-thing-1/shadow?name=downlink', {
      state: { desired: { interval: 300 } },
    })) as { version: number };
    await expect
      .poll(async () => (await uplink(b, 'fleet-1')).doc, { timeout: 3000 })
      .toEqual({ version, desired: { interval: 300 } });
    const offered = await uplink(b, 'fleet-1');
    // Applied and confirmed on a: reported on both, offered by neither.
    expect((await uplink(a, 'fleet-1', '-O', `4,${offered.etag}`)).doc).toBeUndefined();
    await expect.poll(async () => (await uplink(b, 'fleet-1')).doc, { timeout: 3000 }).toBeUndefined();
    const shadow = (await admin(b, '/things/fleet-thing-1/shadow?name=downlink')) as {
      state: Record<string, unknown>;
    };
    expect(shadow.state).toEqual({ desired: { interval: 300 }, reported: { interval: 300 } });
  });

  it('a command one replica delivers and the other sees confirmed is delivered once', async () => {
    const { id } = (await admin(b, '/things/fleet-thing-2/commands', { data: { reboot: true } })) as {
      id: number;
    };
    // Offered by a …
    const offered = await uplink(a, 'fleet-2');
    expect(offered.doc?.commands).toEqual([{ id, data: { reboot: true } }]);
    // … confirmed on b, which offers nothing more.
    const confirmed = await uplink(b, 'fleet-2', '-O', `4,${offered.etag}`);
    expect(confirmed.doc?.commands).toBeUndefined();
    await expect
      .poll(async () => (await commands(a, 'fleet-thing-2')).map((c) => c.state))
      .toEqual(['delivered']);
    // The device's next uplinks, on either replica, carry no command: not offered again.
    await expect
      .poll(async () => (await uplink(a, 'fleet-2')).doc?.commands, { timeout: 3000 })
      .toBeUndefined();
    expect((await uplink(b, 'fleet-2')).doc?.commands).toBeUndefined();
    const [cmd] = await commands(b, 'fleet-thing-2');
    expect(cmd).toMatchObject({ id, state: 'delivered', attempts: 1 });
    const delivered = /cellgate_downlink_commands_total\{event="delivered"\} (\d+)/;
    const sent = /cellgate_downlink_commands_total\{event="sent"\} (\d+)/;
    expect((await metric(a, delivered)) + (await metric(b, delivered))).toBe(1);
    expect((await metric(a, sent)) + (await metric(b, sent))).toBe(1);
  });

  it('the later blocks of a large document sent by one replica are served by the other, and the uplink is published once', async () => {
    const table = Array.from({ length: 600 }, (_, i) => i * 11);
    const { version } = (await admin(a, '/things/fleet-thing-3/shadow?name=downlink', {
      state: { desired: { table } },
    })) as { version: number };
    const device = await UdpClient.open();
    const token = randomBytes(4);
    let mid = 0x3000 + Math.floor(Math.random() * 0x1000);
    const post = (block2?: number) => {
      const options: OptionEntry[] = [
        [Option.URI_PATH, 'telemetry'],
        [Option.URI_QUERY, 'id=fleet-3'],
        [Option.ACCEPT, ContentFormat.JSON],
      ];
      if (block2 !== undefined) options.push([Option.BLOCK2, encodeBlock(block2, false, 6)]);
      return encodeMessage({
        type: MessageType.CON,
        code: Code.POST,
        messageId: mid++,
        token,
        options,
        payload: Buffer.from('{"seq":3}'),
      });
    };
    const ask = async (gw: TestGateway, block2?: number) => {
      const m = parseMessage((await device.request(post(block2), gw.coapPort, 3000)) as Buffer);
      if (!(m instanceof CoapMessage)) throw new Error('no answer');
      expect(m.code).toBe(Code.CHANGED);
      return {
        block: decodeBlock(m.uint(Option.BLOCK2) as number),
        etag: m.opaque(Option.ETAG),
        body: m.payload,
      };
    };
    try {
      const before = [a.recorder.messages.length, b.recorder.messages.length];
      const parts = [await ask(a)];
      expect(parts[0].block).toEqual({ num: 0, more: true, szx: 6 });
      // The device's flow moves to b before it asks for the rest.
      while (parts[parts.length - 1].block.more) parts.push(await ask(b, parts.length));
      expect(parts.length).toBeGreaterThan(2);
      for (const p of parts) expect(p.etag).toEqual(parts[0].etag);
      const doc = JSON.parse(Buffer.concat(parts.map((p) => p.body)).toString()) as unknown;
      expect(doc).toEqual({ version, desired: { table } });
      await new Promise((r) => setTimeout(r, 100));
      expect([a.recorder.messages.length, b.recorder.messages.length]).toEqual([before[0] + 1, before[1]]);
    } finally {
      await device.close();
    }
  });
});
