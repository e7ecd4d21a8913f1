import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeBlock, encodeBlock } from '../../src/coap/block-option.js';
import {
  Blockwise,
  continuesTransfer,
  NO_HELD_BODY,
  NO_TRANSFER,
  type BlockAnswer,
  type BlockExchange,
} from '../../src/coap/blockwise.js';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage, type OptionEntry } from '../../src/coap/message.js';
import { FakePeer } from '../support/fake-peer.js';

const peer = new FakePeer();
const limits = {
  maxBodyBytes: 4096,
  preferredBlockSize: 1024,
  maxTransfers: 10,
  maxBytes: 100_000,
  lifetimeMs: 60_000,
};

function message(code: number, options: OptionEntry[], payload?: Buffer): CoapMessage {
  const m = parseMessage(encodeMessage({ type: MessageType.CON, code, messageId: 1, options, payload }));
  if (!(m instanceof CoapMessage)) throw new Error(m.reason);
  return m;
}

function exchange(code: number, options: OptionEntry[], payload?: Buffer): BlockExchange {
  const request = message(code, [[Option.URI_PATH, 'up'], [Option.URI_QUERY, 'id=a'], ...options], payload);
  return {
    peer,
    request,
    method: request.code,
    path: request.joined(Option.URI_PATH, '/'),
    payload: request.payload,
    blocks: 1,
    block1Szx: -1,
    block1Num: 0,
    block2: undefined,
    orphaned: false,
    blockKey: '',
  };
}

const option = (a: BlockAnswer | undefined, n: number) => a?.options?.find((o) => o[0] === n)?.[1];

describe('block-wise stage (RFC 7959)', () => {
  let bw: Blockwise;
  const caps: string[] = [];
  afterEach(() => {
    bw.clear();
    vi.useRealTimers();
  });
  beforeEach(() => {
    caps.length = 0;
    bw = new Blockwise(limits, 1280, (cap, n) => caps.push(`${cap} ${n}`));
  });

  it('passes a request without block options on untouched, without building its block key', () => {
    const ex = exchange(Code.POST, [], Buffer.from('body'));
    expect(bw.takeRequest(ex, true, 0)).toBeUndefined();
    expect(ex).toMatchObject({ payload: Buffer.from('body'), blocks: 1, block1Szx: -1, block2: undefined });
    expect(ex.orphaned).toBe(false);
    expect(ex.blockKey).toBe('');
  });

  it('answers 4.13 with Size1 to an announced body over the limit, echoing Block1', () => {
    const a = bw.takeRequest(exchange(Code.POST, [[Option.SIZE1, 5000]]), true, 0);
    expect(a?.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect(option(a, Option.SIZE1)).toBe(4096);
    expect(a?.payload?.toString()).toBe('Body over 4096 bytes');
    const b1 = encodeBlock(0, true, 6);
    const b = bw.takeRequest(
      exchange(
        Code.PUT,
        [
          [Option.BLOCK1, b1],
          [Option.SIZE1, 5000],
        ],
        Buffer.alloc(1024),
      ),
      true,
      0,
    );
    expect(option(b, Option.BLOCK1)).toBe(b1);
    // A GET has no body: its Size1 is not looked at.
    expect(bw.takeRequest(exchange(Code.GET, [[Option.SIZE1, 5000]]), true, 0)).toBeUndefined();
  });

  it('reassembles Block1 blocks: 2.31 Continue until the last, then the body with its block count', () => {
    const body = Buffer.from(Array.from({ length: 150 }, (_, i) => i));
    for (let n = 0; n < 2; n++) {
      const a = bw.takeRequest(
        exchange(Code.POST, [[Option.BLOCK1, encodeBlock(n, true, 2)]], body.subarray(n * 64, n * 64 + 64)),
        true,
        0,
      );
      expect(a?.code).toBe(Code.CONTINUE);
      expect(a?.payload).toBeUndefined();
      expect(decodeBlock(option(a, Option.BLOCK1) as number)).toEqual({ num: n, more: true, szx: 2 });
    }
    const ex = exchange(Code.POST, [[Option.BLOCK1, encodeBlock(2, false, 2)]], body.subarray(128));
    expect(bw.takeRequest(ex, true, 0)).toBeUndefined();
    expect(ex.payload).toEqual(body);
    expect(ex.blocks).toBe(3);
    expect([ex.block1Num, ex.block1Szx]).toEqual([2, 2]);
    expect(ex.blockKey).toBe(`${peer.key}|${Code.POST}|up?id=a`);
  });

  it('answers 4.00 to a block of the wrong size and 4.02 to BERT in Block2', () => {
    expect(
      bw.takeRequest(
        exchange(Code.POST, [[Option.BLOCK1, encodeBlock(0, true, 2)]], Buffer.alloc(10)),
        true,
        0,
      )?.code,
    ).toBe(Code.BAD_REQUEST);
    const a = bw.takeRequest(exchange(Code.GET, [[Option.BLOCK2, encodeBlock(0, false, 7)]]), true, 0);
    expect(a?.code).toBe(Code.BAD_OPTION);
    expect(a?.payload?.toString()).toBe('BERT is not used over UDP');
  });

  it('hands the last block of an upload it holds nothing of on as orphaned, or answers 4.08 itself', () => {
    const last = encodeBlock(3, false, 2);
    const ex = exchange(Code.POST, [[Option.BLOCK1, last]], Buffer.alloc(20));
    expect(bw.takeRequest(ex, true, 0)).toBeUndefined();
    expect(ex.orphaned).toBe(true);
    expect(ex.blocks).toBe(4);
    expect(ex.payload).toHaveLength(20);
    expect([ex.block1Num, ex.block1Szx]).toEqual([3, 2]);
    const refused = bw.takeRequest(exchange(Code.POST, [[Option.BLOCK1, last]], Buffer.alloc(20)), false, 0);
    expect(refused?.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(refused?.payload?.toString()).toBe(NO_TRANSFER);
    expect(option(refused, Option.BLOCK1)).toBe(last);
    const middle = encodeBlock(2, true, 2);
    expect(
      option(
        bw.takeRequest(exchange(Code.POST, [[Option.BLOCK1, middle]], Buffer.alloc(64)), true, 0),
        Option.BLOCK1,
      ),
    ).toBe(middle);
  });

  it('slices a response larger than a block: block 0 with M and Size2; a small one goes whole', () => {
    const small = Buffer.alloc(1024, 1);
    const options: OptionEntry[] = [];
    expect(bw.sliceResponse(exchange(Code.GET, []), { code: Code.CONTENT }, small, options)).toBe(small);
    expect(options).toEqual([]);
    const big = Buffer.from(Array.from({ length: 2500 }, (_, i) => i & 0xff));
    const ex = exchange(Code.GET, []);
    const payload = bw.sliceResponse(ex, { code: Code.CONTENT }, big, options);
    expect(payload).toEqual(big.subarray(0, 1024));
    expect(options).toEqual([
      [Option.BLOCK2, encodeBlock(0, true, 6)],
      [Option.SIZE2, 2500],
    ]);
    // A GET can be run again: nothing is held.
    expect(bw.block2.size).toBe(0);
  });

  it('serves the block asked for at the smaller of both block sizes, with Size2 only when asked for', () => {
    const big = Buffer.from(Array.from({ length: 2500 }, (_, i) => i & 0xff));
    const ex = exchange(Code.GET, [[Option.BLOCK2, encodeBlock(3, false, 4)]]);
    expect(bw.takeRequest(ex, true, 0)).toBeUndefined();
    expect(bw.responseSzx(ex)).toBe(4);
    const options: OptionEntry[] = [];
    expect(bw.sliceResponse(ex, { code: Code.CONTENT }, big, options)).toEqual(big.subarray(768, 1024));
    expect(options).toEqual([[Option.BLOCK2, encodeBlock(3, true, 4)]]);
    const past = exchange(Code.GET, [[Option.BLOCK2, encodeBlock(3, false, 6)]]);
    bw.takeRequest(past, true, 0);
    expect(bw.sliceResponse(past, { code: Code.CONTENT }, big, [])).toBeUndefined();
  });

  it('keeps its block size within what fits one message', () => {
    const narrow = new Blockwise(limits, 200, () => undefined);
    expect(narrow.responseSzx(exchange(Code.GET, []))).toBe(3); // 128-byte blocks in 200-byte messages
  });

  it('holds the body of a large POST response under the block key and serves later blocks from it', () => {
    const big = Buffer.from(Array.from({ length: 2500 }, (_, i) => (i * 7) & 0xff));
    const first = exchange(Code.POST, [], Buffer.from('u'));
    bw.sliceResponse(first, { code: Code.CHANGED, contentFormat: 42, etag: Buffer.from([9]) }, big, []);
    expect(bw.block2.size).toBe(1);
    expect(first.blockKey).toBe(`${peer.key}|${Code.POST}|up?id=a`);
    const a = bw.takeRequest(
      exchange(Code.POST, [
        [Option.BLOCK2, encodeBlock(2, false, 6)],
        [Option.SIZE2, 0],
      ]),
      true,
      0,
    );
    expect(a?.code).toBe(Code.CHANGED);
    expect(a?.payload).toEqual(big.subarray(2048));
    expect(a?.options).toEqual([
      [Option.BLOCK2, encodeBlock(2, false, 6)],
      [Option.CONTENT_FORMAT, 42],
      [Option.ETAG, Buffer.from([9])],
      [Option.SIZE2, 2500],
    ]);
    const past = bw.takeRequest(exchange(Code.POST, [[Option.BLOCK2, encodeBlock(3, false, 6)]]), true, 0);
    expect(past?.code).toBe(Code.BAD_OPTION);
    expect(past?.payload?.toString()).toBe('Block2 number past the end');
  });

  it('lets a held body go a lifetime after it was kept, and only the lifetime (no refresh on use)', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    bw = new Blockwise(limits, 1280, () => undefined);
    const later = () => exchange(Code.POST, [[Option.BLOCK2, encodeBlock(1, false, 6)]]);
    bw.sliceResponse(exchange(Code.POST, []), { code: Code.CHANGED }, Buffer.alloc(3000), []);
    vi.advanceTimersByTime(limits.lifetimeMs - 1);
    expect(bw.takeRequest(later(), false, Date.now())?.code).toBe(Code.CHANGED);
    expect(bw.block2.byteSize).toBe(3000);
    vi.advanceTimersByTime(1);
    expect(bw.block2.size).toBe(0);
    expect(bw.block2.byteSize).toBe(0);
    expect(bw.takeRequest(later(), false, Date.now())?.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
  });

  it('hands a later Block2 block of a body it does not hold on as orphaned, or answers 4.08', () => {
    const later: OptionEntry = [Option.BLOCK2, encodeBlock(1, false, 6)];
    const ex = exchange(Code.POST, [later]);
    expect(bw.takeRequest(ex, true, 0)).toBeUndefined();
    expect(ex.orphaned).toBe(true);
    expect(ex.block2).toEqual({ num: 1, more: false, szx: 6 });
    const refused = bw.takeRequest(exchange(Code.POST, [later]), false, 0);
    expect(refused?.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(refused?.payload?.toString()).toBe(NO_HELD_BODY);
    // With Block1 as well, it is not handed on.
    const both = exchange(Code.POST, [[Option.BLOCK1, encodeBlock(0, false, 6)], later], Buffer.from('x'));
    expect(bw.takeRequest(both, true, 0)?.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    // A GET is simply run again.
    const get = exchange(Code.GET, [later]);
    expect(bw.takeRequest(get, true, 0)).toBeUndefined();
    expect(get.orphaned).toBe(false);
  });

  it('tells which requests continue a transfer (served while draining)', () => {
    const continues = (code: number, options: OptionEntry[]) =>
      continuesTransfer(exchange(code, options).request);
    expect(continues(Code.POST, [])).toBe(false);
    expect(continues(Code.POST, [[Option.BLOCK1, encodeBlock(0, true, 2)]])).toBe(false);
    expect(continues(Code.POST, [[Option.BLOCK1, encodeBlock(1, true, 2)]])).toBe(true);
    expect(continues(Code.POST, [[Option.BLOCK2, encodeBlock(1, false, 6)]])).toBe(true);
    expect(continues(Code.GET, [[Option.BLOCK2, encodeBlock(1, false, 6)]])).toBe(false);
  });

  it('reports its caps and forgets everything on clear', () => {
    const small = new Blockwise({ ...limits, maxTransfers: 1 }, 1280, (cap, n) => caps.push(`${cap} ${n}`));
    for (const path of ['a', 'b']) {
      const ex = exchange(
        Code.POST,
        [
          [Option.URI_PATH, path],
          [Option.BLOCK1, encodeBlock(0, true, 2)],
        ],
        Buffer.alloc(64),
      );
      small.takeRequest(ex, true, 0);
    }
    expect(caps).toEqual(['block1_transfers 1']);
    for (const path of ['a', 'b'])
      small.sliceResponse(
        exchange(Code.POST, [[Option.URI_PATH, path]]),
        { code: Code.CHANGED },
        Buffer.alloc(3000),
        [],
      );
    expect(caps).toEqual(['block1_transfers 1', 'block2_bodies 1']);
    small.clear();
    expect([small.block1.size, small.block2.size, small.block1.byteSize, small.block2.byteSize]).toEqual([
      0, 0, 0, 0,
    ]);
  });
});
