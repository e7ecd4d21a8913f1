/** Reply templates: hex bytes and fields rendered into the answer to a raw UDP uplink. */
import { describe, expect, it } from 'vitest';
import { ReplyTemplate } from '../../src/udp/reply.js';
import { udpSchema } from '../../src/config/udp.js';

describe('reply templates', () => {
  it('renders reply templates', () => {
    const t = new ReplyTemplate('a1 counter tag length downlink');
    const tag = Buffer.from('0102030405060708', 'hex');
    expect(
      t.render({ counter: 0x1234, counterBytes: 2, tag, downlink: Buffer.from('hi') })?.toString('hex'),
    ).toBe('a11234010203040506070802' + '6869');
    expect(new ReplyTemplate('06 counter32').render({ counter: 7, counterBytes: 0 })?.toString('hex')).toBe(
      '0600000007',
    );
    expect(
      new ReplyTemplate('length downlink').render({
        counter: 0,
        counterBytes: 0,
        downlink: Buffer.alloc(256),
      }),
    ).toBeUndefined();
    expect(new ReplyTemplate('').empty).toBe(true);
    expect(() => udpSchema.parse({ reply: { ack: '06 nonsense' } })).toThrow(/reply template/);
    expect(() => udpSchema.parse({ unknownDevice: { reply: '15' } })).toThrow(/byte pattern/);
  });
});
