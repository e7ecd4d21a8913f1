import { describe, expect, it } from 'vitest';
import { decodeTag, encodeTag, matchesLastCommand, tagFromHex } from '../../src/downlink/document.js';
import { encodeCbor, encodeJson, Format, formatFor } from '../../src/downlink/encoding.js';
import { clientToken } from '../../src/downlink/downlinks.js';

describe('downlink document', () => {
  it('ETag: version, low 24 bits of the last command id, desired flag and command count (known answer)', () => {
    const tag = encodeTag(0x01020304, false, 0x6b4a2f10, 3);
    expect(tag.toString('hex')).toBe('010203044a2f1003');
    expect(decodeTag(tag)).toEqual({
      version: 0x01020304,
      lastCommand: 0x4a2f10,
      desired: false,
      commands: 3,
    });
    // The same version with and without desired state are different documents.
    expect(encodeTag(7, true, 0, 0).toString('hex')).toBe('0000000700000080');
    expect(encodeTag(7, false, 0, 0).toString('hex')).toBe('0000000700000000');
    expect(decodeTag(encodeTag(7, true, 5, 127))).toEqual({
      version: 7,
      lastCommand: 5,
      desired: true,
      commands: 127,
    });
    expect(matchesLastCommand(0x6b4a2f10, decodeTag(tag)!)).toBe(true);
    expect(matchesLastCommand(0x6b4a2f11, decodeTag(tag)!)).toBe(false);
    // Versions past 2^32 wrap.
    expect(encodeTag(2 ** 32 + 5, false, 0, 0).toString('hex')).toBe('0000000500000000');
  });

  it('rejects tags that are not ours', () => {
    expect(decodeTag(undefined)).toBeUndefined();
    expect(decodeTag(Buffer.from('0102', 'hex'))).toBeUndefined();
    expect(decodeTag(Buffer.alloc(9))).toBeUndefined();
    expect(tagFromHex('010203044a2f1003')).toEqual(Buffer.from('010203044a2f1003', 'hex'));
    expect(tagFromHex('010203044a2f10')).toBeUndefined();
    expect(tagFromHex('zz0203044a2f1003')).toBeUndefined();
    expect(tagFromHex(undefined)).toBeUndefined();
  });

  it('CBOR is plain RFC 8949: definite-length maps with text keys (known answer)', () => {
    const doc = { version: 7, desired: { a: 1, on: true, n: null, l: [1, 'x'], f: 21.5, neg: -3 } };
    expect(encodeCbor(doc).toString('hex')).toBe(
      'a2' + // map(2)
        '6776657273696f6e07' + // "version": 7
        '6764657369726564' + // "desired"
        'a6' + // map(6)
        '616101' + // "a": 1
        '626f6ef5' + // "on": true
        '616ef6' + // "n": null
        '616c8201' +
        '6178' + // "l": [1, "x"]
        '6166fb4035800000000000' + // "f": 21.5 (float64)
        '636e656722', // "neg": -3
    );
    expect(encodeCbor({}).toString('hex')).toBe('a0');
    // Integers beyond 32 bits stay integers (uint64 / negative int64), not float64.
    expect(encodeCbor({ t: 1795258327123, n: -5000000000, l: [2 ** 53 - 1] }).toString('hex')).toBe(
      'a3' +
        '6174' +
        '1b000001a1fdbc2053' +
        '616e' +
        '3b000000012a05f1ff' +
        '616c' +
        '81' +
        '1b001fffffffffffff',
    );
    expect(encodeCbor({ commands: [{ id: 1795258327, data: 'go' }] }).toString('hex')).toBe(
      'a1' + '68636f6d6d616e6473' + '81' + 'a2' + '626964' + '1a6b0177d7' + '6464617461' + '62676f',
    );
  });

  it('JSON is compact', () => {
    expect(encodeJson({ version: 1, desired: { a: 1 } }).toString()).toBe('{"version":1,"desired":{"a":1}}');
  });

  it('Accept 50 is JSON, 60 is CBOR, anything else (or none) the device codec', () => {
    expect(formatFor(50)).toBe(Format.JSON);
    expect(formatFor(60)).toBe(Format.CBOR);
    expect(formatFor(undefined)).toBe(Format.CODEC);
    expect(formatFor(42)).toBe(Format.CODEC);
  });

  it('clientToken names version and device and stays within 64 bytes', () => {
    expect(clientToken('dev-1', 12)).toBe('cellgate:12:dev-1');
    const long = clientToken('d'.repeat(100), 12);
    expect(Buffer.byteLength(long)).toBe(64);
    expect(long.startsWith('cellgate:12:ddd')).toBe(true);
    const multi = clientToken('é'.repeat(40), 1);
    expect(Buffer.byteLength(multi)).toBeLessThanOrEqual(64);
    expect(multi).not.toContain('\uFFFD');
  });
});
