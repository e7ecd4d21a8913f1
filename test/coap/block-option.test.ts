import { describe, expect, it } from 'vitest';
import { blockSize, decodeBlock, encodeBlock, szxForSize } from '../../src/coap/block-option.js';
import { sliceBlock } from '../../src/coap/blockwise.js';

describe('Block option values (RFC 7959 §2.2)', () => {
  it('decodes NUM, M and SZX', () => {
    // RFC 7959 Figure 2 examples: 2:0/1/128 is NUM 0, M 1, SZX 3.
    expect(decodeBlock(0x0b)).toEqual({ num: 0, more: true, szx: 3 });
    expect(decodeBlock(encodeBlock(4, false, 1))).toEqual({ num: 4, more: false, szx: 1 });
    expect(decodeBlock(encodeBlock(0xfffff, true, 6))).toEqual({ num: 0xfffff, more: true, szx: 6 });
  });

  it('maps SZX to sizes 16..1024 and back', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map(blockSize)).toEqual([16, 32, 64, 128, 256, 512, 1024]);
    expect(szxForSize(1024)).toBe(6);
    expect(szxForSize(1000)).toBe(5);
    expect(szxForSize(64)).toBe(2);
    expect(szxForSize(10)).toBe(0);
  });

  it('slices bodies into blocks', () => {
    const body = Buffer.from('x'.repeat(100));
    expect(sliceBlock(body, 0, 2)).toEqual({ payload: body.subarray(0, 64), more: true });
    expect(sliceBlock(body, 1, 2)).toEqual({ payload: body.subarray(64), more: false });
    expect(sliceBlock(body, 2, 2)).toBeUndefined();
    expect(sliceBlock(Buffer.alloc(0), 0, 2)).toEqual({ payload: Buffer.alloc(0), more: false });
    expect(sliceBlock(Buffer.alloc(64), 1, 2)).toBeUndefined();
  });
});
