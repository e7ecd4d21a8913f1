import { describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import {
  CoapMessage,
  encodeEmpty,
  encodeMessage,
  FormatError,
  parseMessage,
  type OptionEntry,
} from '../../src/coap/message.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function parsed(data: Buffer): CoapMessage {
  const m = parseMessage(data);
  if (m instanceof FormatError) throw new Error(`unexpected format error: ${m.reason}`);
  return m;
}

function formatError(data: Buffer): FormatError {
  const m = parseMessage(data);
  if (!(m instanceof FormatError)) throw new Error('expected a format error');
  return m;
}

describe('RFC 7252 Appendix A examples', () => {
  // Figure 16: CON [0x7d34] GET /temperature, then ACK [0x7d34] 2.05 "22.3 C".
  it('parses the GET /temperature request', () => {
    const m = parsed(Buffer.concat([hex('40017d34bb'), Buffer.from('temperature')]));
    expect(m.type).toBe(MessageType.CON);
    expect(m.code).toBe(Code.GET);
    expect(m.messageId).toBe(0x7d34);
    expect(m.tokenLength).toBe(0);
    expect(m.strings(Option.URI_PATH)).toEqual(['temperature']);
    expect(m.payloadLength).toBe(0);
  });

  it('encodes the GET /temperature request byte for byte', () => {
    const out = encodeMessage({
      type: MessageType.CON,
      code: Code.GET,
      messageId: 0x7d34,
      options: [[Option.URI_PATH, 'temperature']],
    });
    expect(out).toEqual(Buffer.concat([hex('40017d34bb'), Buffer.from('temperature')]));
  });

  it('encodes the piggybacked 2.05 "22.3 C" response byte for byte', () => {
    const out = encodeMessage({
      type: MessageType.ACK,
      code: Code.CONTENT,
      messageId: 0x7d34,
      payload: Buffer.from('22.3 C'),
    });
    expect(out).toEqual(Buffer.concat([hex('60457d34ff'), Buffer.from('22.3 C')]));
  });

  // Figure 18: token 0x20 in a CON request and its piggybacked response.
  it('round-trips a token', () => {
    const out = encodeMessage({
      type: MessageType.CON,
      code: Code.GET,
      messageId: 0x7d35,
      token: hex('20'),
      options: [[Option.URI_PATH, 'temperature']],
    });
    expect(out.subarray(0, 5)).toEqual(hex('41017d3520'));
    expect(parsed(out).token).toEqual(hex('20'));
  });
});

describe('option encoding', () => {
  it('uses the 1-byte extension for deltas 13-268 and the 2-byte one from 269', () => {
    const out = encodeMessage({
      type: MessageType.NON,
      code: Code.POST,
      messageId: 1,
      options: [
        [Option.BLOCK1, 0x0e], // delta 27: nibble 13, extension 14
        [Option.NO_RESPONSE, 2], // delta 231 from 27: nibble 13, extension 218
        [2000, Buffer.alloc(0)], // delta 1742: nibble 14, extension 1742 - 269
      ],
    });
    expect(out.subarray(4)).toEqual(hex('d1 0e 0e d1 da 02 e0 05 c1'));
    const m = parsed(out);
    expect(m.optNumbers).toEqual([27, 258, 2000]);
    expect(m.uint(Option.BLOCK1)).toBe(14);
    expect(m.uint(Option.NO_RESPONSE)).toBe(2);
  });

  it('uses the length extensions for long values', () => {
    const v13 = Buffer.alloc(13, 1);
    const v300 = Buffer.alloc(300, 2);
    const out = encodeMessage({
      type: MessageType.CON,
      code: Code.PUT,
      messageId: 2,
      options: [
        [Option.URI_PATH, v13],
        [Option.URI_PATH, v300],
      ],
    });
    expect(out[4]).toBe(0xbd); // delta 11, length 13 → nibble 13, extension 0
    expect(out[5]).toBe(0);
    const second = 4 + 2 + 13;
    expect(out[second]).toBe(0x0e);
    expect(out.readUInt16BE(second + 1)).toBe(300 - 269);
    const m = parsed(out);
    expect(m.opaque(Option.URI_PATH)).toEqual(v13);
    expect(m.count(Option.URI_PATH)).toBe(2);
  });

  it('encodes uints in the fewest bytes (0 as the empty value)', () => {
    for (const [v, len] of [
      [0, 0],
      [1, 1],
      [255, 1],
      [256, 2],
      [65535, 2],
      [65536, 3],
      [0xffffffff, 4],
    ] as const) {
      const out = encodeMessage({
        type: MessageType.CON,
        code: 1,
        messageId: 0,
        options: [[Option.SIZE1, v]],
      });
      const m = parsed(out);
      expect(m.optEnds[0] - m.optStarts[0]).toBe(len);
      expect(m.uint(Option.SIZE1)).toBe(v);
    }
  });

  it('sorts options by number, keeping repeated options in order', () => {
    const options: OptionEntry[] = [
      [Option.URI_QUERY, 'id=x'],
      [Option.URI_PATH, 'a'],
      [Option.CONTENT_FORMAT, 60],
      [Option.URI_PATH, 'b'],
    ];
    const m = parsed(encodeMessage({ type: MessageType.CON, code: Code.POST, messageId: 9, options }));
    expect(m.optNumbers).toEqual([11, 11, 12, 15]);
    expect(m.joined(Option.URI_PATH, '/')).toBe('a/b');
  });

  it('reads all instances of an opaque option', () => {
    const m = parsed(
      encodeMessage({
        type: MessageType.CON,
        code: Code.GET,
        messageId: 3,
        options: [
          [Option.ETAG, hex('01')],
          [Option.ETAG, hex('0203')],
        ],
      }),
    );
    expect(m.opaques(Option.ETAG)).toEqual([hex('01'), hex('0203')]);
  });
});

describe('message format errors (RFC 7252 §3)', () => {
  it('ignores datagrams shorter than the header, without an answer', () => {
    const e = formatError(hex('4001'));
    expect(e.silent).toBe(true);
    expect(e.type).toBe(-1);
  });

  it('silently ignores unknown versions', () => {
    for (const v of [0, 2, 3]) {
      const e = formatError(Buffer.from([(v << 6) | 0, 1, 0, 1]));
      expect(e.silent).toBe(true);
    }
  });

  it('treats token lengths 9-15 as format errors', () => {
    for (let tkl = 9; tkl <= 15; tkl++) {
      const e = formatError(Buffer.concat([Buffer.from([0x40 | tkl, 1, 0, 7]), Buffer.alloc(15)]));
      expect(e.silent).toBe(false);
      expect(e.type).toBe(MessageType.CON);
      expect(e.messageId).toBe(7);
    }
  });

  it('rejects a truncated token', () => {
    expect(formatError(hex('48010001aabb')).reason).toMatch(/token/);
  });

  it('rejects option delta or length nibble 15 that is not the payload marker', () => {
    expect(formatError(hex('40010001f1')).reason).toMatch(/delta nibble 15/);
    expect(formatError(hex('40010001bf61')).reason).toMatch(/length nibble 15/);
  });

  it('rejects a payload marker with no payload', () => {
    expect(formatError(hex('40020001ff')).reason).toMatch(/payload marker/);
  });

  it('rejects option values running past the end', () => {
    expect(formatError(hex('40010001b3616263').subarray(0, 7)).reason).toMatch(/past the end/);
    expect(formatError(hex('40010001d0')).reason).toMatch(/truncated option delta/);
    expect(formatError(hex('40010001e000')).reason).toMatch(/truncated option delta/);
    expect(formatError(hex('400100010d')).reason).toMatch(/truncated option length/);
  });

  it('rejects an empty message with anything after the header', () => {
    expect(formatError(hex('41000001aa')).reason).toMatch(/empty message/);
    expect(formatError(hex('40000001ff00')).reason).toMatch(/empty message/);
  });

  it('rejects an empty message whose token length is not 0 (found by fuzzing: it was taken as empty)', () => {
    expect(formatError(hex('61001234')).reason).toMatch(/empty message with a token length/);
    expect(formatError(hex('48000001')).reason).toMatch(/empty message/);
  });

  it('rejects reserved code classes 1, 6 and 7', () => {
    for (const cls of [1, 6, 7])
      expect(formatError(Buffer.from([0x40, cls << 5, 0, 1])).reason).toMatch(/reserved/);
  });

  it('accepts an empty message of exactly four bytes', () => {
    const m = parsed(encodeEmpty(MessageType.CON, 0x1234));
    expect(m.isEmpty).toBe(true);
    expect(m.messageId).toBe(0x1234);
  });
});
