/**
 * Downlinks end to end over NoSec CoAP with libcoap's coap-client-notls: desired state and commands set
 * through the admin API arrive in the next uplink's response (JSON, CBOR, the device codec), a large document
 * through Block2, a confirmation clears it, commands arrive in order until confirmed and expire.
 */
import { decode as decodeCbor } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DownlinkDocument } from '../../src/downlink/document.js';
import type { DownlinkCodecs } from '../../src/downlink/encoding.js';
import { coapExchange, shownPdus } from '../support/libcoap.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

/** A binary codec for device `bin-1`: 0x01 version(u32) [0x02 interval(u16)] then 0x03 id(u32) per command. */
const tlvCodec: DownlinkCodecs = {
  encodeDownlink(device, data) {
    // As the codec registry answers for a device whose codec does not encode downlinks.
    if (device.id !== 'bin-1') return { bytes: null, error: 'codec raw does not encode downlinks' };
    const doc = data as DownlinkDocument;
    const parts: Buffer[] = [];
    if (doc.version !== undefined) {
      const b = Buffer.alloc(5);
      b[0] = 1;
      b.writeUInt32BE(doc.version, 1);
      parts.push(b);
      const interval = doc.desired?.interval;
      if (typeof interval === 'number') parts.push(Buffer.from([2, interval >> 8, interval & 0xff]));
    }
    for (const c of doc.commands ?? []) {
      const b = Buffer.alloc(5);
      b[0] = 3;
      b.writeUInt32BE(c.id, 1);
      parts.push(b);
    }
    return { bytes: Buffer.concat(parts), contentFormat: 42 };
  },
};

const DEVICES = [
  { id: 'dev-1', thing: 'thing-1' },
  { id: 'dev-2', thing: 'thing-2' },
  { id: 'dev-3', thing: 'thing-3' },
  { id: 'dev-4', thing: 'thing-4' },
  { id: 'dev-5', thing: 'thing-5' },
  { id: 'dev-6', thing: 'thing-6' },
  { id: 'dev-7', thing: 'thing-7' },
  { id: 'dev-8', thing: 'thing-8' },
  { id: 'bin-1', thing: 'bin-thing' },
];

describe('downlinks over NoSec CoAP (libcoap coap-client-notls)', () => {
  let gw: TestGateway;
  const coap = (path: string) => `coap://127.0.0.1:${gw.coapPort}/${path}`;
  const admin = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${gw.ports.http}${path}`, init);

  async function setDesired(thing: string, desired: unknown): Promise<number> {
    const res = await admin(`/things/${thing}/shadow?name=downlink`, {
      method: 'POST',
      body: JSON.stringify({ state: { desired } }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { version: number }).version;
  }

  async function shadow(thing: string): Promise<{ state: Record<string, unknown>; version: number }> {
    const res = await admin(`/things/${thing}/shadow?name=downlink`);
    expect(res.status).toBe(200);
    return (await res.json()) as { state: Record<string, unknown>; version: number };
  }

  async function enqueue(thing: string, data: unknown, ttlSeconds?: number): Promise<number> {
    const res = await admin(`/things/${thing}/commands`, {
      method: 'POST',
      body: JSON.stringify(ttlSeconds === undefined ? { data } : { data, ttlSeconds }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: number }).id;
  }

  async function commands(thing: string): Promise<{ id: number; state: string; attempts: number }[]> {
    const res = await admin(`/things/${thing}/commands`);
    return ((await res.json()) as { commands: { id: number; state: string; attempts: number }[] }).commands;
  }

  /** Runs coap-client-notls; returns the responses it printed and the body. */
  async function request(args: string[], path: string) {
    const r = await coapExchange('coap-client-notls', args, coap(path));
    expect(r.code, r.output).toBe(0);
    return r;
  }

  const uplink = (path: string, ...args: string[]) => request(['-m', 'post', '-e', 'hello', ...args], path);

  beforeAll(async () => {
    gw = await startTestGateway({
      devices: DEVICES,
      config: { downlink: { commands: { maxPerResponse: 2 } } },
      overrides: { downlinkCodecs: tlvCodec },
    });
  });
  afterAll(() => gw.stop());

  it('an uplink with nothing pending is answered 2.04 without payload or ETag', async () => {
    const { responses, body } = await uplink('telemetry?id=dev-1', '-A', '50');
    expect(responses.map((p) => p.code)).toEqual(['2.04']);
    expect(responses[0].options.has('ETag')).toBe(false);
    expect(body.length).toBe(0);
  });

  it('desired state set through the admin API arrives as JSON (Accept 50) and stays until confirmed', async () => {
    const before = gw.recorder.messages.length;
    const version = await setDesired('thing-1', { interval: 300, mode: 'eco' });
    const first = await uplink('telemetry?id=dev-1', '-A', '50');
    expect(first.responses[0].code).toBe('2.04');
    expect(first.responses[0].options.get('Content-Format')).toEqual(['application/json']);
    expect(JSON.parse(first.body.toString())).toEqual({ version, desired: { interval: 300, mode: 'eco' } });
    const etag = first.responses[0].options.get('ETag')?.[0];
    expect(etag).toBe(`0x${version.toString(16).padStart(8, '0')}00000080`);
    // The uplink itself was published, once.
    await gw.recorder.waitFor(before + 1);
    expect(gw.recorder.messages[before].envelope.deviceId).toBe('dev-1');

    // Not confirmed: offered again.
    const again = await uplink('telemetry?id=dev-1', '-A', '50');
    expect(JSON.parse(again.body.toString())).toEqual({ version, desired: { interval: 300, mode: 'eco' } });

    // Confirmed with the ETag option: cleared, written to reported with a clientToken, version bumped.
    const confirm = await uplink('telemetry?id=dev-1', '-A', '50', '-O', `4,${etag}`);
    expect(confirm.responses[0].code).toBe('2.04');
    expect(confirm.body.length).toBe(0);
    await expect
      .poll(async () => (await shadow('thing-1')).state)
      .toEqual({ desired: { interval: 300, mode: 'eco' }, reported: { interval: 300, mode: 'eco' } });
    expect((await shadow('thing-1')).version).toBe(version + 1);
    const after = await uplink('telemetry?id=dev-1', '-A', '50', '-O', `4,${etag}`);
    expect(after.body.length).toBe(0);
  });

  it('only what differs from reported is sent; a newer desired state arrives after a confirmation', async () => {
    const v = await setDesired('thing-1', { interval: 60 });
    const r = await uplink('telemetry?id=dev-1', '-A', '50');
    expect(JSON.parse(r.body.toString())).toEqual({ version: v, desired: { interval: 60 } });
  });

  it('a confirmation of an older version is reported on top of newer desired state (409, then the current version)', async () => {
    const v1 = await setDesired('thing-7', { a: 1, b: 1 });
    const offered = await uplink('telemetry?id=dev-7', '-A', '50');
    expect(JSON.parse(offered.body.toString())).toEqual({ version: v1, desired: { a: 1, b: 1 } });
    const v2 = await setDesired('thing-7', { b: 2 }); // changed while the device applied v1
    const etag = offered.responses[0].options.get('ETag')![0];
    const next = await uplink('telemetry?id=dev-7', '-A', '50', '-O', `4,${etag}`);
    // What the device applied (a: 1, b: 1) is reported; b: 2 is still to do.
    await expect.poll(async () => (await shadow('thing-7')).state.reported).toEqual({ a: 1, b: 1 });
    expect((await shadow('thing-7')).state.delta).toEqual({ b: 2 });
    const doc = JSON.parse(
      (next.body.length ? next : await uplink('telemetry?id=dev-7', '-A', '50')).body.toString(),
    );
    expect(doc.desired).toEqual({ b: 2 });
    expect(doc.version).toBeGreaterThanOrEqual(v2);
    const metrics = await (await admin('/metrics')).text();
    expect(metrics).toMatch(/cellgate_downlink_source_operations_total\{result="report_conflict"\} [1-9]/);
  });

  it('CBOR with Accept 60', async () => {
    const version = await setDesired('thing-2', { interval: 120, tags: ['a', 'b'], limits: { max: 7.5 } });
    const { responses, body } = await uplink('telemetry?id=dev-2', '-A', '60');
    expect(responses[0].options.get('Content-Format')).toEqual(['application/cbor']);
    expect(body[0]).toBe(0xa2);
    expect(decodeCbor(body)).toEqual({
      version,
      desired: { interval: 120, tags: ['a', 'b'], limits: { max: 7.5 } },
    });
  });

  it('the device codec without Accept; JSON for a device whose codec has no downlink encoding', async () => {
    const version = await setDesired('bin-thing', { interval: 900 });
    const id = await enqueue('bin-thing', { reboot: true });
    const bin = await uplink('telemetry?id=bin-1');
    expect(bin.responses[0].options.get('Content-Format')).toEqual(['application/octet-stream']);
    const expected = Buffer.alloc(13);
    expected[0] = 1;
    expected.writeUInt32BE(version, 1);
    expected.set([2, 900 >> 8, 900 & 0xff], 5);
    expected[8] = 3;
    expected.writeUInt32BE(id, 9);
    expect(bin.body).toEqual(expected);

    const v3 = await setDesired('thing-3', { interval: 5 });
    const json = await uplink('telemetry?id=dev-3');
    expect(json.responses[0].options.get('Content-Format')).toEqual(['application/json']);
    expect(JSON.parse(json.body.toString())).toEqual({ version: v3, desired: { interval: 5 } });
  });

  it('an Accept nobody can produce gets the plain 2.04; the downlink stays pending', async () => {
    const v = await setDesired('thing-4', { x: 1 });
    const r = await uplink('telemetry?id=dev-4', '-A', '0');
    expect(r.responses[0].code).toBe('2.04');
    expect(r.body.length).toBe(0);
    const next = await uplink('telemetry?id=dev-4', '-A', '50');
    expect(JSON.parse(next.body.toString())).toEqual({ version: v, desired: { x: 1 } });
  });

  it('a large desired document arrives whole through Block2, and the uplink is published once', async () => {
    // Desired and reported share the shadow's 8 KB: a document that can be confirmed stays under 4 KB.
    const table = Array.from({ length: 400 }, (_, i) => i * 7);
    const version = await setDesired('thing-5', { table, name: 'x'.repeat(1000) });
    const before = gw.recorder.messages.length;
    const { responses, body } = await uplink('bulk?id=dev-5', '-A', '50');
    expect(body.length).toBeGreaterThan(2048);
    expect(JSON.parse(body.toString())).toEqual({ version, desired: { table, name: 'x'.repeat(1000) } });
    // libcoap prints the last block twice.
    const blocks = [...new Set(responses.map((p) => p.options.get('Block2')?.[0]))];
    expect(blocks.length).toBe(Math.ceil(body.length / 1024));
    expect(blocks[0]).toBe('0/M/1024');
    const etags = new Set(responses.map((p) => p.options.get('ETag')?.[0]));
    expect(etags.size).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.recorder.messages.length).toBe(before + 1);
    // Confirmed with applied=<hex> in the query of the next uplink.
    const hex = [...etags][0]!.slice(2);
    const confirm = await uplink(`bulk?id=dev-5&applied=${hex}`, '-A', '50');
    expect(confirm.body.length).toBe(0);
    await expect.poll(async () => (await shadow('thing-5')).state.delta).toBeUndefined();
  });

  it('a large document is not put in a separate response: a slow uplink gets a plain 2.04, the next one the document', async () => {
    // libcoap (as many device stacks) cannot take Block2 in a separate CON response after an empty ACK.
    const desired = { blob: 'z'.repeat(2500) };
    const version = await setDesired('thing-8', desired);
    gw.recorder.delayMs = 1500; // longer than the 1 s piggyback window: empty ACK, then a separate response
    const started = Date.now();
    const slow = await uplink('telemetry?id=dev-8', '-A', '50');
    gw.recorder.delayMs = 0;
    expect(slow.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000); // libcoap did not stall waiting for blocks
    expect(slow.responses.map((p) => p.code)).toEqual(['2.04']);
    expect(slow.responses[0].options.has('Block2')).toBe(false);
    expect(slow.body.length).toBe(0);
    const next = await uplink('telemetry?id=dev-8', '-A', '50');
    expect(JSON.parse(next.body.toString())).toEqual({ version, desired });
    expect(await (await admin('/metrics')).text()).toMatch(
      /cellgate_downlink_responses_total\{outcome="deferred"\} 1/,
    );
  });

  it('a confirmation whose reported state would not fit the shadow is refused: the downlink stays pending', async () => {
    const version = await setDesired('thing-6', { blob: 'y'.repeat(5000) });
    const first = await uplink('telemetry?id=dev-6', '-A', '50');
    const etag = first.responses[0].options.get('ETag')![0];
    await uplink('telemetry?id=dev-6', '-A', '50', '-O', `4,${etag}`);
    await expect
      .poll(
        async () =>
          (await (await admin('/metrics')).text()).match(
            /source_operations_total\{result="report_failed"\} (\d+)/,
          )?.[1],
      )
      .toBe('1');
    const again = await uplink('telemetry?id=dev-6', '-A', '50');
    expect(JSON.parse(again.body.toString())).toMatchObject({ version, desired: { blob: 'y'.repeat(5000) } });
    expect((await shadow('thing-6')).state.reported).toBeUndefined();
  });

  it('commands arrive in order, at most N per response, again until confirmed, then never again', async () => {
    const ids = [
      await enqueue('thing-3', { op: 'a' }),
      await enqueue('thing-3', 'b'),
      await enqueue('thing-3', 3),
    ];
    expect(ids[1]).toBe(ids[0] + 1);
    // thing-3 still has the desired state of an earlier test pending: confirm it first.
    const first = await uplink('telemetry?id=dev-3', '-A', '50');
    const doc = JSON.parse(first.body.toString()) as DownlinkDocument;
    expect(doc.commands).toEqual([
      { id: ids[0], data: { op: 'a' } },
      { id: ids[1], data: 'b' },
    ]);
    const again = await uplink('telemetry?id=dev-3', '-A', '50');
    expect((JSON.parse(again.body.toString()) as DownlinkDocument).commands?.map((c) => c.id)).toEqual(
      ids.slice(0, 2),
    );
    const etag = first.responses[0].options.get('ETag')![0];
    const second = await uplink('telemetry?id=dev-3', '-A', '50', '-O', `4,${etag}`);
    const doc2 = JSON.parse(second.body.toString()) as DownlinkDocument;
    expect(doc2.desired).toBeUndefined();
    expect(doc2.commands).toEqual([{ id: ids[2], data: 3 }]);
    const etag2 = second.responses[0].options.get('ETag')![0];
    const third = await uplink('telemetry?id=dev-3', '-A', '50', '-O', `4,${etag2}`);
    expect(third.body.length).toBe(0);
    await expect
      .poll(async () => (await commands('thing-3')).map((c) => [c.id, c.state, c.attempts]))
      .toEqual([
        [ids[0], 'delivered', 2],
        [ids[1], 'delivered', 2],
        [ids[2], 'delivered', 1],
      ]);
  });

  it('a command past its TTL is never offered and ends expired', async () => {
    const id = await enqueue('thing-4', 'soon', 1);
    const offered = await uplink('telemetry?id=dev-4', '-A', '50');
    expect((JSON.parse(offered.body.toString()) as DownlinkDocument).commands).toEqual([
      { id, data: 'soon' },
    ]);
    await new Promise((r) => setTimeout(r, 1100));
    const later = await uplink('telemetry?id=dev-4', '-A', '50');
    expect((JSON.parse(later.body.toString()) as DownlinkDocument).commands).toBeUndefined();
    expect((await commands('thing-4')).find((c) => c.id === id)?.state).toBe('expired');
    const metrics = await (await admin('/metrics')).text();
    expect(metrics).toMatch(/cellgate_downlink_commands_total\{event="expired"\} [1-9]/);
  });

  it('GET /shadow: 2.05 with the document and ETag, 2.03 Valid while it is unchanged', async () => {
    const version = await setDesired('thing-2', { interval: 77 });
    const r = await request(['-m', 'get', '-A', '50'], 'shadow?id=dev-2');
    const res = r.responses[0];
    expect(res.code).toBe('2.05');
    expect(res.options.get('Max-Age')).toEqual(['0']);
    const doc = JSON.parse(r.body.toString()) as DownlinkDocument;
    expect(doc.version).toBe(version);
    expect(doc.desired).toMatchObject({ interval: 77 });
    const etag = res.options.get('ETag')![0];
    const valid = await request(['-m', 'get', '-A', '50', '-O', `4,${etag}`], 'shadow?id=dev-2');
    expect(valid.responses[0].code).toBe('2.03');
    expect(valid.responses[0].options.get('ETag')).toEqual([etag]);
    expect(valid.body.length).toBe(0);
    // Confirm with applied=: the document is now empty, with a new ETag.
    const applied = await request(['-m', 'get', '-A', '50'], `shadow?id=dev-2&applied=${etag.slice(2)}`);
    expect(applied.responses[0].code).toBe('2.05');
    expect(applied.body.toString()).toBe('{}');
    expect(applied.responses[0].options.get('ETag')![0]).not.toBe(etag);
  });

  it('GET /shadow refuses other methods, unknown devices and formats nobody can produce', async () => {
    const put = await request(['-m', 'put', '-e', 'x'], 'shadow?id=dev-2');
    expect(put.responses[0].code).toBe('4.05');
    const unknown = await request(['-m', 'get'], 'shadow?id=nobody');
    expect(unknown.responses[0].code).toBe('4.01');
    const anon = await request(['-m', 'get'], 'shadow');
    expect(anon.responses[0].code).toBe('4.01');
    const octet = await request(['-m', 'get', '-A', '42'], 'shadow?id=dev-2');
    expect(octet.responses[0].code).toBe('4.06');
  });

  it('confirmed delivery (dl=con): a separate CON response; the device’s ACK confirms it', async () => {
    const id = await enqueue('thing-1', { beep: 1 });
    const r = await uplink('telemetry?id=dev-1&dl=con', '-A', '50');
    const shown = shownPdus(r.output);
    const separate = shown.find((p) => p.type === 'CON' && p.code === '2.04');
    expect(separate, r.output).toBeDefined();
    expect(shown.some((p) => p.type === 'ACK' && p.code === '0.00')).toBe(true);
    expect((JSON.parse(r.body.toString()) as DownlinkDocument).commands).toEqual([{ id, data: { beep: 1 } }]);
    await expect
      .poll(async () => (await commands('thing-1')).find((c) => c.id === id)?.state)
      .toBe('delivered');
    // The desired state offered in the same document was confirmed by the ACK too.
    await expect.poll(async () => (await shadow('thing-1')).state.delta).toBeUndefined();
  });

  it('bad confirmations are counted and change nothing', async () => {
    const v = await setDesired('thing-4', { y: 2 });
    await uplink('telemetry?id=dev-4', '-A', '50', '-O', '4,0x0102');
    await uplink('telemetry?id=dev-4&applied=nothex', '-A', '50');
    await uplink('telemetry?id=dev-4', '-A', '50', '-O', '4,0x7fffffff00000080');
    // The current version without the desired flag: a document without desired state confirms none.
    await uplink('telemetry?id=dev-4', '-A', '50', '-O', `4,0x${v.toString(16).padStart(8, '0')}00000000`);
    const r = await uplink('telemetry?id=dev-4', '-A', '50');
    expect(JSON.parse(r.body.toString())).toMatchObject({ version: v, desired: { y: 2 } });
    const metrics = await (await admin('/metrics')).text();
    expect(metrics).toMatch(/cellgate_downlink_confirmations_total\{kind="invalid"\} [2-9]/);
    expect(metrics).toMatch(/cellgate_downlink_confirmations_total\{kind="unmatched"\} [1-9]/);
    expect(metrics).toMatch(/cellgate_downlink_responses_total\{outcome="attached"\} \d+/);
    expect(metrics).toMatch(/cellgate_downlink_cache_entries \d+/);
  });
});
