/** Frame fields of raw UDP datagrams: BCD, swapped BCD, ASCII and hex ids, counters, the payload offset. */
import { describe, expect, it } from 'vitest';
import { bcdDigits, frameCounter, frameId, payloadOffset, toBcd } from '../../src/udp/frame.js';
import { udpSchema } from '../../src/config/udp.js';

describe('frame fields', () => {
  it('reads BCD with filler, swapped BCD, ASCII and hex ids; refuses non-digits', () => {
    expect(bcdDigits(Buffer.from('3569380356438 09f'.replace(' ', ''), 'hex'), false)).toBe(
      '356938035643809',
    );
    expect(bcdDigits(Buffer.from('98942010', 'hex'), true)).toBe('89490201');
    expect(bcdDigits(Buffer.from('3a', 'hex'), false)).toBeUndefined();
    expect(bcdDigits(Buffer.from('1f23', 'hex'), false)).toBeUndefined();
    // Found by fuzzing: after a filler in the first nibble, the rest was not looked at.
    expect(bcdDigits(Buffer.from('98fe2000', 'hex'), false)).toBeUndefined();
    expect(bcdDigits(Buffer.from('12f3', 'hex'), false)).toBeUndefined();
    expect(bcdDigits(Buffer.from('21ef', 'hex'), true)).toBeUndefined();
    expect(bcdDigits(Buffer.from('12ffff', 'hex'), false)).toBe('12');
    expect(toBcd('356938035643809', 8).toString('hex')).toBe('356938035643809f');
    const layout = udpSchema.parse({
      frame: {
        id: { offset: 1, length: 15, encoding: 'ascii', field: 'imei' },
        counter: { offset: 16, bytes: 4 },
      },
    }).frame;
    const f = Buffer.concat([
      Buffer.of(9),
      Buffer.from('356938035643809'),
      Buffer.from('0000012c', 'hex'),
      Buffer.from('p'),
    ]);
    expect(frameId(f, layout)).toBe('356938035643809');
    expect(frameCounter(f, layout)).toBe(300);
    expect(payloadOffset(layout)).toBe(20);
    expect(frameId(f.subarray(0, 10), layout)).toBeUndefined();
    expect(frameCounter(f.subarray(0, 18), layout)).toBeUndefined();
  });
});
