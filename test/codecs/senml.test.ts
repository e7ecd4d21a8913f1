import { describe, expect, it } from 'vitest';
import senmlPlugin from '../../codecs/senml/index.js';
import { decodeCborMaps } from '../../src/codecs/cbor-json.js';
import type { Codec } from '../../src/codecs/codec.js';
import { downlink, FIXTURES, hex, RECEIVED_AT, uplink } from './support.js';

const NOW = RECEIVED_AT / 1000;

async function codec(options: Record<string, unknown> = {}): Promise<Codec> {
  return senmlPlugin.create(options, { baseDir: FIXTURES });
}

async function decodeJson(pack: unknown, contentFormat: number | undefined = 110): Promise<unknown> {
  const c = await codec();
  return (await c.decodeUplink(Buffer.from(JSON.stringify(pack)), uplink({ contentFormat }))).data;
}

// RFC 8428 §5.1.3 (Multiple Measurements) and its resolved form, §5.1.4.
const MULTIPLE_MEASUREMENTS = [
  { bn: 'urn:dev:ow:10e2073a01080063', bt: 1.320067464e9, bu: '%RH', v: 20 },
  { u: 'lon', v: 24.30621 },
  { u: 'lat', v: 60.07965 },
  { t: 60, v: 20.3 },
  { u: 'lon', t: 60, v: 24.30622 },
  { u: 'lat', t: 60, v: 60.07965 },
  { t: 120, v: 20.7 },
  { u: 'lon', t: 120, v: 24.30623 },
  { u: 'lat', t: 120, v: 60.07966 },
  { u: '%EL', t: 150, v: 98 },
  { t: 180, v: 21.2 },
  { u: 'lon', t: 180, v: 24.30628 },
  { u: 'lat', t: 180, v: 60.07967 },
];
const N = 'urn:dev:ow:10e2073a01080063';
const RESOLVED = [
  { n: N, u: '%RH', t: 1.320067464e9, v: 20 },
  { n: N, u: 'lon', t: 1.320067464e9, v: 24.30621 },
  { n: N, u: 'lat', t: 1.320067464e9, v: 60.07965 },
  { n: N, u: '%RH', t: 1.320067524e9, v: 20.3 },
  { n: N, u: 'lon', t: 1.320067524e9, v: 24.30622 },
  { n: N, u: 'lat', t: 1.320067524e9, v: 60.07965 },
  { n: N, u: '%RH', t: 1.320067584e9, v: 20.7 },
  { n: N, u: 'lon', t: 1.320067584e9, v: 24.30623 },
  { n: N, u: 'lat', t: 1.320067584e9, v: 60.07966 },
  { n: N, u: '%EL', t: 1.320067614e9, v: 98 },
  { n: N, u: '%RH', t: 1.320067644e9, v: 21.2 },
  { n: N, u: 'lon', t: 1.320067644e9, v: 24.30628 },
  { n: N, u: 'lat', t: 1.320067644e9, v: 60.07967 },
];

// RFC 8428 §6: the CBOR example, the second pack of §5.1.2 (Multiple Data Points).
const CBOR_EXAMPLE = `
87 a7 21 78 1b 75 72 6e 3a 64 65 76 3a 6f 77 3a 31 30 65 32 30 37 33 61 30 31 30 38 30 30 36 3a
22 fb 41 d3 03 a1 5b 00 10 62 23 61 41 20 05 00 67 76 6f 6c 74 61 67 65 01 61 56 02 fb 40 5e 06
66 66 66 66 66 a3 00 67 63 75 72 72 65 6e 74 06 24 02 fb 3f f3 33 33 33 33 33 33 a3 00 67 63 75
72 72 65 6e 74 06 23 02 fb 3f f4 cc cc cc cc cc cd a3 00 67 63 75 72 72 65 6e 74 06 22 02 fb 3f
f6 66 66 66 66 66 66 a3 00 67 63 75 72 72 65 6e 74 06 21 02 f9 3e 00 a3 00 67 63 75 72 72 65 6e
74 06 20 02 fb 3f f9 99 99 99 99 99 9a a3 00 67 63 75 72 72 65 6e 74 06 00 02 fb 3f fb 33 33 33
33 33 33`;
const BT = 1.276020076001e9;
const V5 = 'urn:dev:ow:10e2073a0108006:';
const CBOR_RESOLVED = [
  { n: `${V5}current`, u: 'A', t: BT - 5, v: 1.2, bver: 5 },
  { n: `${V5}current`, u: 'A', t: BT - 4, v: 1.3, bver: 5 },
  { n: `${V5}current`, u: 'A', t: BT - 3, v: 1.4, bver: 5 },
  { n: `${V5}current`, u: 'A', t: BT - 2, v: 1.5, bver: 5 },
  { n: `${V5}current`, u: 'A', t: BT - 1, v: 1.6, bver: 5 },
  { n: `${V5}voltage`, u: 'V', t: BT, v: 120.1, bver: 5 },
  { n: `${V5}current`, u: 'A', t: BT, v: 1.7, bver: 5 },
];

describe('senml codec: RFC 8428 examples', () => {
  it('§5.1.1 single data point, time "now"', async () => {
    expect(await decodeJson([{ n: N, u: 'Cel', v: 23.1 }])).toEqual([{ n: N, u: 'Cel', t: NOW, v: 23.1 }]);
  });

  it('§5.1.2 multiple data points with a base name', async () => {
    expect(
      await decodeJson([
        { bn: `${N}:`, n: 'voltage', u: 'V', v: 120.1 },
        { n: 'current', u: 'A', v: 1.2 },
      ]),
    ).toEqual([
      { n: `${N}:voltage`, u: 'V', t: NOW, v: 120.1 },
      { n: `${N}:current`, u: 'A', t: NOW, v: 1.2 },
    ]);
  });

  it('§5.1.2 with base time, base unit and version 5: resolved in time order, version kept', async () => {
    const pack = [
      { bn: V5, bt: BT, bu: 'A', bver: 5, n: 'voltage', u: 'V', v: 120.1 },
      { n: 'current', t: -5, v: 1.2 },
      { n: 'current', t: -4, v: 1.3 },
      { n: 'current', t: -3, v: 1.4 },
      { n: 'current', t: -2, v: 1.5 },
      { n: 'current', t: -1, v: 1.6 },
      { n: 'current', v: 1.7 },
    ];
    expect(await decodeJson(pack)).toEqual(CBOR_RESOLVED);
  });

  it('§5.1.3 multiple measurements resolve to §5.1.4', async () => {
    expect(await decodeJson(MULTIPLE_MEASUREMENTS)).toEqual(RESOLVED);
  });

  it('§5.1.5 multiple data types', async () => {
    const bn = `${N}:`;
    expect(
      await decodeJson([
        { bn, n: 'temp', u: 'Cel', v: 23.1 },
        { n: 'label', vs: 'Machine Room' },
        { n: 'open', vb: false },
        { n: 'nfv-reader', vd: 'aGkgCg' },
      ]),
    ).toEqual([
      { n: `${bn}temp`, u: 'Cel', t: NOW, v: 23.1 },
      { n: `${bn}label`, t: NOW, vs: 'Machine Room' },
      { n: `${bn}open`, t: NOW, vb: false },
      { n: `${bn}nfv-reader`, t: NOW, vd: 'aGkgCg' },
    ]);
  });

  it('§5.1.6 collection of resources: a later base name, the first base time', async () => {
    const t = 1.320078429e9;
    expect(
      await decodeJson([
        { bn: '2001:db8::2/', bt: t, n: 'temperature', u: 'Cel', v: 25.2 },
        { n: 'humidity', u: '%RH', v: 30 },
        { bn: '2001:db8::1/', n: 'temperature', u: 'Cel', v: 12.3 },
        { n: 'humidity', u: '%RH', v: 67 },
      ]),
    ).toEqual([
      { n: '2001:db8::2/temperature', u: 'Cel', t, v: 25.2 },
      { n: '2001:db8::2/humidity', u: '%RH', t, v: 30 },
      { n: '2001:db8::1/temperature', u: 'Cel', t, v: 12.3 },
      { n: '2001:db8::1/humidity', u: '%RH', t, v: 67 },
    ]);
  });

  it('§5.1.7 setting an actuator: a record of base fields only, relative and absolute times', async () => {
    const bn = `${N}:`;
    expect(
      await decodeJson([
        { bn },
        { n: 'temp', u: 'Cel', v: 23.1 },
        { n: 'heat', u: '/', v: 1 },
        { n: 'fan', u: '/', v: 0 },
      ]),
    ).toEqual([
      { n: `${bn}temp`, u: 'Cel', t: NOW, v: 23.1 },
      { n: `${bn}heat`, u: '/', t: NOW, v: 1 },
      { n: `${bn}fan`, u: '/', t: NOW, v: 0 },
    ]);
    const bt = 1.320078429e9;
    expect(
      await decodeJson([
        { bt, bu: '/', n: '2001:db8::3', v: 0.5 },
        { n: '2001:db8::4', v: 0.5 },
        { n: '2001:db8::3', t: 0.1, v: 0 },
        { n: '2001:db8::4', t: 0.1, v: 0 },
      ]),
    ).toEqual([
      { n: '2001:db8::3', u: '/', t: bt, v: 0.5 },
      { n: '2001:db8::4', u: '/', t: bt, v: 0.5 },
      { n: '2001:db8::3', u: '/', t: bt + 0.1, v: 0 },
      { n: '2001:db8::4', u: '/', t: bt + 0.1, v: 0 },
    ]);
  });

  it('§6 the CBOR example (Content-Format 112)', async () => {
    const c = await codec();
    const out = await c.decodeUplink(hex(CBOR_EXAMPLE), uplink({ contentFormat: 112 }));
    expect(out.data).toEqual(CBOR_RESOLVED);
  });

  it('applies base value and base sum, and keeps update time', async () => {
    expect(
      await decodeJson([
        { bn: 'meter/', bv: 1000, bs: 50, n: 'energy', v: 5, s: 2, ut: 60 },
        { n: 'energy', v: 7 },
        { n: 'flow', s: 3 },
      ]),
    ).toEqual([
      { n: 'meter/energy', t: NOW, v: 1005, s: 52, ut: 60 },
      { n: 'meter/energy', t: NOW, v: 1007, s: 50 },
      { n: 'meter/flow', t: NOW, s: 53 },
    ]);
  });
});

describe('senml codec: encodings', () => {
  it('tells JSON from CBOR by Content-Format, option, or first byte', async () => {
    const json = Buffer.from(' [{"n":"a","v":1}]');
    const cbor = hex('81 a2 00 6161 02 01');
    const expected = [{ n: 'a', t: NOW, v: 1 }];
    const auto = await codec();
    expect((await auto.decodeUplink(json, uplink())).data).toEqual(expected);
    expect((await auto.decodeUplink(cbor, uplink())).data).toEqual(expected);
    expect((await auto.decodeUplink(cbor, uplink({ contentFormat: 60 }))).data).toEqual(expected);
    expect((await auto.decodeUplink(json, uplink({ contentFormat: 50 }))).data).toEqual(expected);
    const forced = await codec({ format: 'cbor' });
    await expect(async () => forced.decodeUplink(json, uplink())).rejects.toThrow(/CBOR/);
  });

  it('CBOR: byte-string data values become base64url; text keys are extensions, not fields', async () => {
    const c = await codec();
    // [{0: "x", 8: h'68690a', "v": 5}]
    const out = await c.decodeUplink(
      hex('81 a3 00 6178 08 4368690a 6176 05'),
      uplink({ contentFormat: 112 }),
    );
    expect(out.data).toEqual([{ n: 'x', t: NOW, vd: 'aGkK' }]);
  });

  it('encodes downlinks as SenML JSON, or SenML CBOR with integer labels when asked', async () => {
    const c = await codec();
    const pack = [
      { bn: 'act/', n: 'valve', vb: true },
      { n: 'blob', vd: 'aGkK' },
    ];
    const json = await c.encodeDownlink?.(pack, downlink());
    expect(json?.contentFormat).toBe(110);
    expect(JSON.parse(json?.bytes.toString() ?? '')).toEqual(pack);
    const cbor = await c.encodeDownlink?.(pack, downlink({ accept: 112 }));
    expect(cbor?.contentFormat).toBe(112);
    const maps = decodeCborMaps(cbor?.bytes ?? Buffer.alloc(0)) as Map<unknown, unknown>[];
    expect([...maps[0]]).toEqual([
      [-2, 'act/'],
      [0, 'valve'],
      [4, true],
    ]);
    expect([...(maps[1].get(8) as Uint8Array)]).toEqual([0x68, 0x69, 0x0a]);
    // What goes out as SenML CBOR reads back as the same records.
    const back = await c.decodeUplink(cbor?.bytes ?? Buffer.alloc(0), uplink({ contentFormat: 112 }));
    expect(back.data).toEqual([
      { n: 'act/valve', t: NOW, vb: true },
      { n: 'act/blob', t: NOW, vd: 'aGkK' },
    ]);
    await expect(async () => c.encodeDownlink?.({ n: 'x' }, downlink())).rejects.toThrow(/array of records/);
  });

  it('§5.1.3 encoded as SenML CBOR decodes to the §5.1.4 resolved records', async () => {
    const c = await codec();
    const cbor = await c.encodeDownlink?.(MULTIPLE_MEASUREMENTS, downlink({ accept: 112 }));
    expect(cbor?.bytes.length).toBeLessThan(Buffer.byteLength(JSON.stringify(MULTIPLE_MEASUREMENTS)));
    expect(
      (await c.decodeUplink(cbor?.bytes ?? Buffer.alloc(0), uplink({ contentFormat: 112 }))).data,
    ).toEqual(RESOLVED);
  });
});

describe('senml codec: bad packs', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not an array', { n: 'a', v: 1 }, /a pack is an array of records/],
    ['record not an object', [1], /record 1: not an object/],
    ['must-understand field', [{ n: 'a', v: 1, foo_: 1 }], /must-understand field "foo_"/],
    ['newer version', [{ bver: 11, n: 'a', v: 1 }], /version 11 is newer than 10/],
    [
      'versions differ',
      [
        { n: 'a', v: 1 },
        { bver: 5, n: 'b', v: 2 },
      ],
      /record 2: all records of a pack must have the same version/,
    ],
    ['two values', [{ n: 'a', v: 1, vs: 'x' }], /more than one value field/],
    ['no value', [{ n: 'a', u: 'Cel' }], /no value and no sum/],
    ['empty name', [{ v: 1 }], /name "" is empty or has characters/],
    ['bad name', [{ n: 'a b', v: 1 }], /name "a b"/],
    ['name starting with a dash', [{ n: '-a', v: 1 }], /name "-a"/],
    ['value of the wrong type', [{ n: 'a', v: '1' }], /"v" must be a number/],
    ['boolean of the wrong type', [{ n: 'a', vb: 1 }], /"vb" must be a boolean/],
    ['base time of the wrong type', [{ bt: 'x', n: 'a', v: 1 }], /"bt" must be a number/],
    ['data value not base64url', [{ n: 'a', vd: 'a+b/' }], /"vd" must be base64url/],
  ];
  it.each(bad)('%s', async (_, pack, message) => {
    const c = await codec();
    await expect(async () => c.decodeUplink(Buffer.from(JSON.stringify(pack)), uplink())).rejects.toThrow(
      message,
    );
  });

  it('CBOR: a data value that is not a byte string, a must-understand text key', async () => {
    const c = await codec();
    const ctx = uplink({ contentFormat: 112 });
    await expect(async () => c.decodeUplink(hex('81 a2 00 6161 08 6161'), ctx)).rejects.toThrow(
      /"vd" must be a byte string/,
    );
    await expect(async () => c.decodeUplink(hex('81 a2 00 6161 625f5f 01'), ctx)).rejects.toThrow(
      /must-understand/,
    );
    await expect(async () => c.decodeUplink(hex('a1 00 6161'), ctx)).rejects.toThrow(/array of records/);
  });
});
