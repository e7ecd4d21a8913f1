import { describe, expect, it } from 'vitest';
import protobufPlugin from '../../codecs/protobuf/index.js';
import type { Codec } from '../../src/codecs/codec.js';
import { CodecRegistry } from '../../src/codecs/registry.js';
import { device, downlink, FIXTURES, hex, uplink } from './support.js';

const create = (options: Record<string, unknown>): Promise<Codec> =>
  Promise.resolve(protobufPlugin.create({ proto: 'telemetry.proto', ...options }, { baseDir: FIXTURES }));

// Telemetry { battery_mv: 3300, temperature_centi: -1234, counter: 2^60, raw: h'dead', state: ACTIVE,
// samples: [1.5, -2], location: { lat: 0.5, lon: -1 } }, encoded by hand from the wire format rules.
const TELEMETRY = hex(`
  08 e4 19
  10 a3 13
  18 80 80 80 80 80 80 80 80 10
  22 02 de ad
  28 01
  32 08 0000c03f 000000c0
  3a 12 09 000000000000e03f 11 000000000000f0bf`);
const TELEMETRY_JSON = {
  batteryMv: 3300,
  temperatureCenti: -1234,
  counter: '1152921504606846976',
  raw: '3q0=',
  state: 'ACTIVE',
  samples: [1.5, -2],
  location: { lat: 0.5, lon: -1 },
};

describe('protobuf codec', () => {
  it('decodes a known message into its JSON form', async () => {
    const c = await create({ type: 'cellgate.test.Telemetry' });
    expect((await c.decodeUplink(TELEMETRY, uplink())).data).toEqual(TELEMETRY_JSON);
  });

  it('includes default values unless asked not to; numbers, enum numbers and field names as written on request', async () => {
    const withDefaults = await create({ type: 'cellgate.test.Telemetry' });
    expect((await withDefaults.decodeUplink(hex('08 01'), uplink())).data).toMatchObject({
      batteryMv: 1,
      temperatureCenti: 0,
      counter: '0',
      raw: '',
      state: 'IDLE',
      samples: [],
    });
    const bare = await create({ type: 'cellgate.test.Telemetry', defaults: false });
    expect((await bare.decodeUplink(hex('08 01'), uplink())).data).toEqual({ batteryMv: 1 });
    const raw = await create({
      type: 'cellgate.test.Telemetry',
      longs: 'number',
      enums: 'number',
      keepCase: true,
    });
    expect((await raw.decodeUplink(TELEMETRY, uplink())).data).toMatchObject({
      battery_mv: 3300,
      counter: 1152921504606846976,
      state: 1,
    });
  });

  it('round-trips: what a downlink encodes, an uplink decodes the same', async () => {
    const c = await create({ type: 'cellgate.test.Telemetry' });
    const out = await c.encodeDownlink?.(TELEMETRY_JSON, downlink());
    expect(out?.contentFormat).toBe(42);
    expect(out?.bytes.equals(TELEMETRY)).toBe(true);
    expect((await c.decodeUplink(out?.bytes ?? Buffer.alloc(0), uplink())).data).toEqual(TELEMETRY_JSON);
  });

  it('encodes downlinks as downlinkType', async () => {
    const c = await create({ type: 'cellgate.test.Telemetry', downlinkType: 'cellgate.test.Command' });
    const out = await c.encodeDownlink?.({ action: 'on', intervalS: 60 }, downlink());
    expect(out?.bytes.toString('hex')).toBe('0a026f6e103c');
    await expect(async () => c.encodeDownlink?.([1], downlink())).rejects.toThrow(
      /a downlink is a JSON object/,
    );
    const t = await create({ type: 'cellgate.test.Telemetry' });
    await expect(async () => t.encodeDownlink?.({ location: 5 }, downlink())).rejects.toThrow(
      /protobuf cellgate\.test\.Telemetry: .*location: object expected/,
    );
  });

  it('rejects payloads that are not the message type', async () => {
    const c = await create({ type: 'cellgate.test.Telemetry' });
    await expect(async () => c.decodeUplink(hex('08'), uplink())).rejects.toThrow(
      /protobuf cellgate\.test\.Telemetry: index out of range/,
    );
    await expect(async () => c.decodeUplink(hex('0f 01'), uplink())).rejects.toThrow(/invalid wire type 7/);
    await expect(async () => c.decodeUplink(hex('22 05 01'), uplink())).rejects.toThrow(/index out of range/);
  });

  it('reports a missing file, an unknown type and bad options when the registry prepares', async () => {
    const registry = new CodecRegistry({ baseDir: FIXTURES });
    try {
      const report = await registry.prepare([
        device({ name: 'protobuf', options: { proto: 'missing.proto', type: 'X' } }, undefined, 'a'),
        device(
          { name: 'protobuf', options: { proto: 'telemetry.proto', type: 'cellgate.test.Nope' } },
          undefined,
          'b',
        ),
        device({ name: 'protobuf', options: { proto: 'telemetry.proto' } }, undefined, 'c'),
      ]);
      const errors = report.failed.map((f) => `${f.devices.join()}: ${f.error}`).sort();
      expect(errors).toHaveLength(3);
      expect(errors[0]).toMatch(/^a: protobuf codec: cannot load .*missing\.proto/);
      expect(errors[1]).toMatch(/^b: protobuf codec: no message type "cellgate\.test\.Nope"/);
      expect(errors[2]).toBe('c: protobuf codec options: "type" is required');
    } finally {
      await registry.close();
    }
  });
});
