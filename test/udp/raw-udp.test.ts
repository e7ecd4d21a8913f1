/**
 * Raw UDP end to end with real peers (socat, netcat): identity by source IP and by a BCD IMEI in the frame,
 * unknown devices, frame counters (duplicates, replays, gaps, resets and the admin reset), duplicate bytes
 * without a counter, the acknowledgement rule, piggybacked downlinks and their confirmation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { freeUdpPorts, ncSend, socatSend } from '../support/raw-peers.js';
import { toBcd } from '../../src/udp/frame.js';

const IMEI = '356938035643809';

function frame(counter: number, payload: string, imei = IMEI): Buffer {
  const c = Buffer.alloc(2);
  c.writeUInt16BE(counter);
  return Buffer.concat([toBcd(imei, 8), c, Buffer.from(payload)]);
}

async function metric(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await gw.metrics.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const outcome = (gw: TestGateway, o: string, listener = 'udp') =>
  metric(gw, 'cellgate_udp_datagrams_total', `listener="${listener}",outcome="${o}"`);

async function admin(gw: TestGateway, method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${gw.ports.http}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('raw UDP identified by source IP', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    const [port] = await freeUdpPorts(1);
    gw = await startTestGateway({
      devices: [
        { id: 'apn-7', ip: '127.0.0.7', imsi: '262019876543210' },
        { id: 'loop-1', ip: '127.0.0.1' },
        { id: 'secure-9', ip: '127.0.0.9', psk: { identity: 's9', key: 'text:k' } },
      ],
      config: { udp: { port, identity: ['ip'], reply: { ack: '06' } }, downlink: { enabled: false } },
    });
  });
  afterAll(() => gw?.stop());

  it('publishes a datagram from socat with transport udp and acknowledges it once published', async () => {
    const r = await socatSend(gw.ports.udp as number, Buffer.from('hello'), { source: '127.0.0.7' });
    expect(r.stdout).toEqual(Buffer.from([0x06]));
    await gw.recorder.waitFor(1);
    const e = gw.recorder.messages[0].envelope;
    expect(e).toMatchObject({
      deviceId: 'apn-7',
      transport: 'udp',
      identity: 'ip',
      imsi: '262019876543210',
      path: 'udp',
    });
    expect(Buffer.from(e.raw, 'base64').toString()).toBe('hello');
    expect(e.coap).toBeUndefined();
  });

  it('publishes a datagram from nc -u', async () => {
    const before = gw.recorder.messages.length;
    const r = await ncSend(gw.ports.udp as number, Buffer.from('from nc'));
    expect(r.stdout).toEqual(Buffer.from([0x06]));
    await gw.recorder.waitFor(before + 1);
    expect(gw.recorder.messages[before].envelope.deviceId).toBe('loop-1');
  });

  it('drops a datagram from an address that names no device, counted, without a reply', async () => {
    const before = gw.recorder.messages.length;
    const r = await socatSend(gw.ports.udp as number, Buffer.from('who'), { source: '127.0.0.5' });
    expect(r.stdout.length).toBe(0);
    expect(gw.recorder.messages.length).toBe(before);
    expect(await outcome(gw, 'unknown_device')).toBe(1);
  });

  it('drops identical bytes within the dedup window but re-sends the acknowledgement', async () => {
    const before = gw.recorder.messages.length;
    const r1 = await socatSend(gw.ports.udp as number, Buffer.from('same bytes'), { source: '127.0.0.7' });
    const r2 = await socatSend(gw.ports.udp as number, Buffer.from('same bytes'), { source: '127.0.0.7' });
    expect(r1.stdout).toEqual(Buffer.from([0x06]));
    expect(r2.stdout).toEqual(Buffer.from([0x06]));
    await gw.recorder.waitForExactly(before + 1);
    expect(await outcome(gw, 'duplicate')).toBe(1);
  });

  it('refuses a device provisioned with a PSK on plain UDP', async () => {
    const before = gw.recorder.messages.length;
    const r = await socatSend(gw.ports.udp as number, Buffer.from('x'), { source: '127.0.0.9' });
    expect(r.stdout.length).toBe(0);
    expect(gw.recorder.messages.length).toBe(before);
    expect(await outcome(gw, 'refused')).toBe(1);
  });

  it('sends no acknowledgement for an uplink that could not be published, and takes its retransmission', async () => {
    const before = gw.recorder.messages.length;
    gw.recorder.failWithRetryAfter = 5;
    const r = await socatSend(gw.ports.udp as number, Buffer.from('unsafe'), { source: '127.0.0.7' });
    expect(r.stdout.length).toBe(0);
    expect(await outcome(gw, 'publish_failed')).toBe(1);
    gw.recorder.failWithRetryAfter = undefined;
    const again = await socatSend(gw.ports.udp as number, Buffer.from('unsafe'), { source: '127.0.0.7' });
    expect(again.stdout).toEqual(Buffer.from([0x06]));
    await gw.recorder.waitFor(before + 1);
  });

  it('drops datagrams over udp.maxDatagramBytes', async () => {
    await socatSend(gw.ports.udp as number, Buffer.alloc(2000, 1), { source: '127.0.0.7', waitMs: 200 });
    expect(await outcome(gw, 'too_large')).toBe(1);
  });
});

describe('raw UDP frames: BCD IMEI, 16-bit counter, downlinks', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    const [port] = await freeUdpPorts(1);
    gw = await startTestGateway({
      devices: [{ id: 'meter-1', thing: 'meter-thing', imei: IMEI }],
      config: {
        udp: {
          port,
          identity: ['frame'],
          frame: {
            id: { offset: 0, length: 8, encoding: 'bcd', field: 'imei' },
            counter: { offset: 8, bytes: 2 },
          },
          counter: { maxGap: 100 },
          reply: { ack: 'ac counter', downlink: 'a1 counter tag length downlink', confirmPrefix: 'hex:cf' },
          unknownDevice: { reply: 'hex:15' },
        },
      },
    });
  });
  afterAll(() => gw?.stop());
  const send = (b: Buffer) => socatSend(gw.ports.udp as number, b);

  it('names the device by the IMEI in the frame and echoes the counter', async () => {
    const r = await send(frame(10, 'a'));
    expect(r.stdout.toString('hex')).toBe('ac000a');
    await gw.recorder.waitFor(1);
    const e = gw.recorder.messages[0].envelope;
    expect(e).toMatchObject({ deviceId: 'meter-1', identity: 'frame', frameCounter: 10, imei: IMEI });
    expect(e.decoded).toBe(null);
  });

  it('gives an uplink with a counter the same messageId on any gateway, and one without a counter a new one', async () => {
    const other = await startTestGateway({
      devices: [{ id: 'meter-1', thing: 'meter-thing', imei: IMEI }],
      config: {
        udp: {
          port: (await freeUdpPorts(1))[0],
          identity: ['frame'],
          frame: { id: { offset: 0, length: 8 }, counter: { offset: 8, bytes: 2 } },
        },
        downlink: { enabled: false },
      },
    });
    try {
      await socatSend(other.ports.udp as number, frame(10, 'a'), { waitMs: 200 });
      await other.recorder.waitFor(1);
      expect(other.recorder.messages[0].envelope.messageId).toBe(gw.recorder.messages[0].envelope.messageId);
      expect(other.recorder.messages[0].envelope.messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8/);
    } finally {
      await other.stop();
    }
  });

  it('answers an unknown IMEI with the configured byte pattern and counts it', async () => {
    const r = await send(frame(1, 'a', '490154203237518'));
    expect(r.stdout.toString('hex')).toBe('15');
    expect(await outcome(gw, 'unknown_device')).toBe(1);
  });

  it('drops a retransmission (acknowledged again), a replay and a counter too far ahead; takes a gap', async () => {
    const n = gw.recorder.messages.length;
    const dup = await send(frame(10, 'a'));
    expect(dup.stdout.toString('hex')).toBe('ac000a');
    const replayed = await send(frame(10, 'other bytes, same counter'));
    expect(replayed.stdout.length).toBe(0);
    const old = await send(frame(9, 'a'));
    expect(old.stdout.length).toBe(0);
    const far = await send(frame(10 + 101, 'b'));
    expect(far.stdout.length).toBe(0);
    const gap = await send(frame(10 + 100, 'c'));
    expect(gap.stdout.toString('hex')).toBe('ac006e');
    await gw.recorder.waitForExactly(n + 1);
    expect(await outcome(gw, 'duplicate')).toBe(1);
    expect(await outcome(gw, 'replay')).toBe(2);
    expect(await outcome(gw, 'counter_gap')).toBe(1);
  });

  it('refuses a counter that restarted until the admin API resets it', async () => {
    const n = gw.recorder.messages.length;
    const restarted = await send(frame(1, 'after reboot'));
    expect(restarted.stdout.length).toBe(0);
    expect(await outcome(gw, 'counter_reset')).toBe(1);
    expect(await admin(gw, 'GET', '/devices/meter-1/frame-counter')).toEqual({
      status: 200,
      body: { deviceId: 'meter-1', counter: 110 },
    });
    expect((await admin(gw, 'DELETE', '/devices/meter-1/frame-counter')).body).toEqual({
      deviceId: 'meter-1',
      reset: true,
    });
    expect((await admin(gw, 'GET', '/devices/nobody/frame-counter')).status).toBe(404);
    const taken = await send(frame(1, 'after reset'));
    expect(taken.stdout.toString('hex')).toBe('ac0001');
    await gw.recorder.waitFor(n + 1);
  });

  it('piggybacks a queued command on the reply and marks it delivered on the next uplink', async () => {
    const q = await admin(gw, 'POST', '/things/meter-thing/commands', { data: { valve: 'close' } });
    expect(q.status).toBe(201);
    const r = await send(frame(2, 'x'));
    const b = r.stdout;
    expect(b[0]).toBe(0xa1);
    expect(b.readUInt16BE(1)).toBe(2);
    const tag = b.subarray(3, 11);
    const len = b[11];
    const doc = JSON.parse(b.subarray(12, 12 + len).toString()) as { commands: { data: unknown }[] };
    expect(doc.commands[0].data).toEqual({ valve: 'close' });
    expect(tag.equals(Buffer.alloc(8))).toBe(false);
    let list = await admin(gw, 'GET', '/things/meter-thing/commands');
    expect((list.body.commands as { state: string }[])[0].state).toBe('sent');
    const next = await send(frame(3, 'y'));
    expect(next.stdout.toString('hex')).toBe('ac0003');
    list = await admin(gw, 'GET', '/things/meter-thing/commands');
    expect((list.body.commands as { state: string }[])[0].state).toBe('delivered');
  });

  it('takes an explicit confirmation frame (prefix and tag), which is not published', async () => {
    await admin(gw, 'POST', '/things/meter-thing/commands', { data: 'reboot' });
    const r = await send(frame(4, 'z'));
    const tag = r.stdout.subarray(3, 11);
    const n = gw.recorder.messages.length;
    const confirm = await send(Buffer.concat([frame(5, ''), Buffer.from([0xcf]), tag]));
    expect(confirm.stdout.length).toBe(0);
    expect(await outcome(gw, 'confirmation')).toBe(1);
    const list = await admin(gw, 'GET', '/things/meter-thing/commands');
    expect((list.body.commands as { state: string }[]).every((c) => c.state === 'delivered')).toBe(true);
    await gw.recorder.waitForExactly(n);
  });

  it('sends the acknowledgement alone when the downlink does not fit udp.reply.maxBytes', async () => {
    const small = await startTestGateway({
      devices: [{ id: 'meter-1', thing: 'meter-thing', imei: IMEI }],
      config: {
        udp: {
          port: (await freeUdpPorts(1))[0],
          identity: ['frame'],
          frame: { id: { offset: 0, length: 8 }, counter: { offset: 8, bytes: 2 } },
          reply: { ack: 'ac counter', downlink: 'a1 downlink', maxBytes: 16 },
        },
      },
    });
    try {
      await small.downlinks?.enqueue('meter-thing', JSON.stringify('x'.repeat(64)), 60_000);
      const r = await socatSend(small.ports.udp as number, frame(1, 'p'));
      expect(r.stdout.toString('hex')).toBe('ac0001');
      const cmds = await small.downlinks?.listCommands('meter-thing');
      expect(cmds?.[0].state).toBe('queued');
    } finally {
      await small.stop();
    }
  });
});

describe('raw UDP named by a codec, with the counter the device codec returns', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      devices: [
        { id: 'j-1', codec: 'json' },
        { id: 'sim-2', codec: 'json', iccid: '89490200001234567890' },
      ],
      config: {
        udp: {
          port: (await freeUdpPorts(1))[0],
          identity: ['frame'],
          frame: { codec: 'json' },
          counter: { bits: 16 },
          reply: { ack: '06 counter' },
        },
        downlink: { enabled: false },
      },
    });
  });
  afterAll(() => gw?.stop());
  const send = (o: unknown) => socatSend(gw.ports.udp as number, Buffer.from(JSON.stringify(o)));

  it('takes the deviceId the identity codec returns and the counter the device codec returns', async () => {
    const r = await send({ deviceId: 'j-1', counter: 5, t: 21.5 });
    expect(r.stdout.toString('hex')).toBe('060005');
    await gw.recorder.waitFor(1);
    expect(gw.recorder.messages[0].envelope).toMatchObject({
      deviceId: 'j-1',
      identity: 'frame',
      frameCounter: 5,
      decoded: { deviceId: 'j-1', counter: 5, t: 21.5 },
    });
    expect((await send({ deviceId: 'j-1', counter: 4, t: 1 })).stdout.length).toBe(0);
    expect((await send({ deviceId: 'nobody', counter: 9 })).stdout.length).toBe(0);
    expect((await send({ deviceId: 'j-1', counter: 6, t: 2 })).stdout.toString('hex')).toBe('060006');
    await gw.recorder.waitForExactly(2);
    expect(await outcome(gw, 'replay')).toBe(1);
    expect(await outcome(gw, 'unknown_device')).toBe(1);
  });

  it('reads an ICCID stored as swapped BCD', async () => {
    const g = await startTestGateway({
      devices: [{ id: 'sim-2', iccid: '89490200001234567890' }],
      config: {
        udp: {
          port: (await freeUdpPorts(1))[0],
          identity: ['frame'],
          frame: { id: { offset: 0, length: 10, encoding: 'bcd-swapped', field: 'iccid' } },
          reply: { ack: '06' },
        },
        downlink: { enabled: false },
      },
    });
    try {
      const iccid = toBcd('89490200001234567890', 10, true);
      expect(iccid.toString('hex')).toBe('98942000002143658709');
      const r = await socatSend(g.ports.udp as number, Buffer.concat([iccid, Buffer.from('p')]));
      expect(r.stdout.toString('hex')).toBe('06');
      await g.recorder.waitFor(1);
      expect(g.recorder.messages[0].envelope.deviceId).toBe('sim-2');
      expect(Buffer.from(g.recorder.messages[0].envelope.raw, 'base64').subarray(10).toString()).toBe('p');
    } finally {
      await g.stop();
    }
  });
});

describe('raw UDP and RADIUS start-up errors', () => {
  it('names the key to change when a raw or RADIUS port is taken', async () => {
    const { createSocket } = await import('node:dgram');
    const busy = createSocket('udp4');
    await new Promise<void>((r) => busy.bind(0, '127.0.0.1', () => r()));
    const port = busy.address().port;
    try {
      await expect(startTestGateway({ config: { udp: { bind: '127.0.0.1', port } } })).rejects.toThrow(
        /UDP 127.0.0.1:\d+ is in use by another process; set udp.port or CELLGATE_UDP__PORT/,
      );
      await expect(
        startTestGateway({ config: { radius: { bind: '127.0.0.1', port, clients: [] } } }),
      ).rejects.toThrow(/set radius.port or CELLGATE_RADIUS__PORT/);
    } finally {
      busy.close();
    }
  });
});
