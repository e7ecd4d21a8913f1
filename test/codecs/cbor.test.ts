import { describe, expect, it } from 'vitest';
import cborPlugin from '../../codecs/cbor/index.js';
import { prepareCbor } from '../../src/codecs/cbor-input.js';
import { decodeCborJson, encodeCbor } from '../../src/codecs/cbor-json.js';
import { DecodeError } from '../../src/codecs/codec.js';
import { downlink, FIXTURES, hex, uplink } from './support.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const nested = [1, [2, 3], [4, 5]];

/**
 * RFC 8949 Appendix A, every example, with the JSON value our mapping gives (RFC 8949 §6.1, integers past
 * 2^53 and bignums as decimal strings, byte strings as base64url). RFC 7049's `f818` for simple(24) is not
 * well-formed under RFC 8949 §3.3 and is among the bad inputs below.
 */
const APPENDIX_A: [string, unknown][] = [
  ['00', 0],
  ['01', 1],
  ['0a', 10],
  ['17', 23],
  ['1818', 24],
  ['1819', 25],
  ['1864', 100],
  ['1903e8', 1000],
  ['1a000f4240', 1000000],
  ['1b000000e8d4a51000', 1000000000000],
  ['1bffffffffffffffff', '18446744073709551615'],
  ['c249010000000000000000', '18446744073709551616'],
  ['3bffffffffffffffff', '-18446744073709551616'],
  ['c349010000000000000000', '-18446744073709551617'],
  ['20', -1],
  ['29', -10],
  ['3863', -100],
  ['3903e7', -1000],
  ['f90000', 0],
  ['f98000', -0],
  ['f93c00', 1],
  ['fb3ff199999999999a', 1.1],
  ['f93e00', 1.5],
  ['f97bff', 65504],
  ['fa47c35000', 100000],
  ['fa7f7fffff', 3.4028234663852886e38],
  ['fb7e37e43c8800759c', 1.0e300],
  ['f90001', 5.960464477539063e-8],
  ['f90400', 0.00006103515625],
  ['f9c400', -4],
  ['fbc010666666666666', -4.1],
  ['f97c00', null],
  ['f97e00', null],
  ['f9fc00', null],
  ['fa7f800000', null],
  ['fa7fc00000', null],
  ['faff800000', null],
  ['fb7ff0000000000000', null],
  ['fb7ff8000000000000', null],
  ['fbfff0000000000000', null],
  ['f4', false],
  ['f5', true],
  ['f6', null],
  ['f7', null],
  ['f0', null],
  ['f8ff', null],
  ['c074323031332d30332d32315432303a30343a30305a', '2013-03-21T20:04:00Z'],
  ['c11a514b67b0', 1363896240],
  ['c1fb41d452d9ec200000', 1363896240.5],
  ['d74401020304', '01020304'],
  ['d818456449455446', 'ZElFVEY'],
  ['d82076687474703a2f2f7777772e6578616d706c652e636f6d', 'http://www.example.com'],
  ['40', ''],
  ['4401020304', 'AQIDBA'],
  ['60', ''],
  ['6161', 'a'],
  ['6449455446', 'IETF'],
  ['62225c', '"\\'],
  ['62c3bc', 'ü'],
  ['63e6b0b4', '水'],
  ['64f0908591', '𐅑'],
  ['80', []],
  ['83010203', [1, 2, 3]],
  ['8301820203820405', nested],
  ['98190102030405060708090a0b0c0d0e0f101112131415161718181819', range(25)],
  ['a0', {}],
  ['a201020304', { '1': 2, '3': 4 }],
  ['a26161016162820203', { a: 1, b: [2, 3] }],
  ['826161a161626163', ['a', { b: 'c' }]],
  ['a56161614161626142616361436164614461656145', { a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' }],
  ['5f42010243030405ff', 'AQIDBAU'],
  ['7f657374726561646d696e67ff', 'streaming'],
  ['9fff', []],
  ['9f018202039f0405ffff', nested],
  ['9f01820203820405ff', nested],
  ['83018202039f0405ff', nested],
  ['83019f0203ff820405', nested],
  ['9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff', range(25)],
  ['bf61610161629f0203ffff', { a: 1, b: [2, 3] }],
  ['826161bf61626163ff', ['a', { b: 'c' }]],
  ['bf6346756ef563416d7421ff', { Fun: true, Amt: -2 }],
];

describe('cbor codec: RFC 8949 Appendix A', () => {
  it.each(APPENDIX_A)('%s', (h, expected) => {
    const value = decodeCborJson(hex(h));
    expect(value).toStrictEqual(expected);
    // Whatever comes out has a JSON form that reads back the same (-0 becomes 0 in JSON text).
    expect(JSON.parse(JSON.stringify(value))).toEqual(Object.is(expected, -0) ? 0 : expected);
  });
});

describe('cbor codec: tags and values cbor-x would read its own way', () => {
  it('applies expected-conversion tags to the byte strings inside them', () => {
    // 21([h'ff', {"k": h'fe'}, 22(h'ff'), 2(h'0100')])
    expect(decodeCborJson(hex('d5 84 41ff a1 616b 41fe d6 41ff c2 420100'))).toEqual([
      '_w',
      { k: '_g' },
      '/w==',
      256,
    ]);
    expect(decodeCborJson(hex('d7 42abcd'))).toBe('ABCD');
    expect(decodeCborJson(hex('d86c 42abcd'))).toBe('abcd');
  });

  it('reads decimal fractions as numbers (RFC 8949 §3.4.4: 273.15)', () => {
    expect(decodeCborJson(hex('c4 82 21 196ab3'))).toBe(273.15);
    expect(decodeCborJson(hex('c4 82 01 c2 4101'))).toBe(10);
    // Not a decimal fraction: the tag is dropped and the content kept.
    expect(decodeCborJson(hex('c4 83 01 02 03'))).toEqual([1, 2, 3]);
  });

  it('drops tags cbor-x gives meanings of its own: no shared references, no packed values, no sets', () => {
    expect(decodeCborJson(hex('d81c 81 d81d 00'))).toEqual([0]);
    expect(decodeCborJson(hex('d8e1 6161'))).toBe('a');
    expect(decodeCborJson(hex('d81b 82 654572726f72 6178'))).toEqual(['Error', 'x']);
    expect(decodeCborJson(hex('d90102 83 01 02 03'))).toEqual([1, 2, 3]);
    expect(decodeCborJson(hex('d9d9f7 a1 6161 01'))).toEqual({ a: 1 });
  });

  it('keeps well-formed plain input as it is, without copying', () => {
    const b = hex('a26161016162820203');
    expect(prepareCbor(b)).toBe(b);
  });

  it('reads strings with an eight-byte length after a long string (found by fuzzing)', () => {
    // cbor-x hands a string of 32 bytes or more to its native extractor, which scans the rest of the input
    // for strings and refused an eight-byte length anywhere after it.
    const long = 'a'.repeat(40);
    const b = hex(`a2 6161 7828 ${Buffer.from(long).toString('hex')} 6162 7b 0000000000000005 68656c6c6f`);
    expect(decodeCborJson(b)).toEqual({ a: long, b: 'hello' });
    expect(prepareCbor(b).toString('hex')).toContain('61626568656c6c6f'); // "b": "hello" with a one-byte head
  });

  it('does not let a __proto__ key reach the prototype', () => {
    const v = decodeCborJson(hex('a1 69 5f5f70726f746f5f5f a1 6161 01')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });
});

describe('cbor codec: bad input', () => {
  const bad: [string, string, RegExp][] = [
    ['empty', '', /empty payload/],
    ['truncated integer', '19 01', /truncated/],
    ['truncated string', '65 6869', /truncated/],
    ['reserved additional information', '1c', /reserved additional information 28/],
    ['break outside indefinite item', 'ff', /break outside/],
    ['bytes after the item', '00 00', /1 bytes after the data item/],
    ['array count beyond the data', '9b ffffffffffffffff 00', /truncated container/],
    ['string length beyond the data', '7b 00000000ffffffff 61', /truncated/],
    ['invalid UTF-8', '62 c328', /not valid UTF-8/],
    ['indefinite chunk of another type', '5f 6161 ff', /another major type/],
    ['indefinite integer', '1f', /indefinite length on an integer/],
    ['two-byte simple value below 32', 'f8 10', /simple value 16 in two bytes/],
    ["RFC 7049's simple(24)", 'f8 18', /simple value 24 in two bytes/],
    ['nested too deeply', `${'81'.repeat(70)}00`, /nested deeper than 64 levels/],
    ['array map key', 'a1 80 01', /Invalid property name/],
  ];
  it.each(bad)('%s', (_, h, message) => {
    expect(() => decodeCborJson(hex(h))).toThrow(DecodeError);
    expect(() => decodeCborJson(hex(h))).toThrow(message);
  });
});

describe('cbor codec plugin', () => {
  it('decodes uplinks and encodes downlinks that decode back', async () => {
    const codec = await cborPlugin.create({}, { baseDir: FIXTURES });
    expect(await codec.decodeUplink(hex('a2 6174 fb4036800000000000 6168 1832'), uplink())).toEqual({
      data: { t: 22.5, h: 50 },
    });
    const data = { on: true, level: 3, name: 'pump', list: [1.5, null, 'x'] };
    const out = await codec.encodeDownlink?.(data, downlink());
    expect(out?.contentFormat).toBe(60);
    expect(decodeCborJson(out?.bytes ?? Buffer.alloc(0))).toEqual(data);
    expect([...encodeCbor(Buffer.from([1, 2]))]).toEqual([0x42, 1, 2]);
  });
});
