/**
 * Downlinks through the codec registry: a device whose codec is `protobuf` with a downlink message type gets
 * the document encoded by that codec (no Accept), JSON or CBOR when it asks for them, and a device whose codec
 * cannot encode documents (`raw`) gets JSON.
 */
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coapExchange } from '../support/libcoap.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

const PROTO = `
syntax = "proto3";
package test;
message Up { double temp = 1; }
message Desired { uint32 interval = 1; string mode = 2; }
message Command { uint64 id = 1; string data = 2; }
message Down { uint32 version = 1; Desired desired = 2; repeated Command commands = 3; }
`;

describe('downlinks encoded by the device codec (codec registry)', () => {
  let gw: TestGateway;
  const admin = (path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${gw.ports.http}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const uplink = (device: string, ...args: string[]) =>
    coapExchange(
      'coap-client-notls',
      ['-m', 'post', '-e', 'x', ...args],
      `coap://127.0.0.1:${gw.coapPort}/t?id=${device}`,
    );

  beforeAll(async () => {
    gw = await startTestGateway({
      devices: [
        {
          id: 'pb-1',
          codec: {
            name: 'protobuf',
            options: { proto: 'files/down.proto', type: 'test.Up', downlinkType: 'test.Down' },
          },
        },
        { id: 'raw-1', codec: 'raw' },
      ],
      files: { 'down.proto': PROTO },
    });
  });
  afterAll(() => gw.stop());

  it('protobuf without Accept; JSON with Accept 50', async () => {
    const set = await admin('/things/pb-1/shadow?name=downlink', {
      state: { desired: { interval: 300, mode: 'eco' } },
    });
    const { version } = (await set.json()) as { version: number };
    const cmd = await admin('/things/pb-1/commands', { data: 'reboot' });
    const { id } = (await cmd.json()) as { id: number };
    const r = await uplink('pb-1');
    expect(r.code, r.output).toBe(0);
    expect(r.responses[0].code).toBe('2.04');
    expect(r.responses[0].options.get('Content-Format')).toEqual(['application/octet-stream']);
    const Down = protobuf.parse(PROTO).root.lookupType('test.Down');
    expect(Down.toObject(Down.decode(r.body), { longs: Number })).toEqual({
      version,
      desired: { interval: 300, mode: 'eco' },
      commands: [{ id, data: 'reboot' }],
    });
    const json = await uplink('pb-1', '-A', '50');
    expect(JSON.parse(json.body.toString())).toEqual({
      version,
      desired: { interval: 300, mode: 'eco' },
      commands: [{ id, data: 'reboot' }],
    });
  });

  it('a codec that cannot encode the document (raw) means JSON', async () => {
    const set = await admin('/things/raw-1/shadow?name=downlink', { state: { desired: { led: 'on' } } });
    const { version } = (await set.json()) as { version: number };
    const r = await uplink('raw-1');
    expect(r.responses[0].options.get('Content-Format')).toEqual(['application/json']);
    expect(JSON.parse(r.body.toString())).toEqual({ version, desired: { led: 'on' } });
  });
});
