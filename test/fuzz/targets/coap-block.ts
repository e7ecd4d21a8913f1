/**
 * The CoAP Block1 / Block2 option (RFC 7959 §2.2) and the Block1 reassembly it drives: an option value of
 * 0–3 bytes decodes to NUM / M / SZX and encodes back to the same number; a Block1Assembler fed any
 * sequence of blocks (several transfers, out of order, repeated, oversized, expiring) never throws, keeps
 * its transfers and bytes within their caps, holds no bytes when it holds no transfer, and completes bodies
 * no larger than the limit that end with the last block's payload.
 */
import fc from 'fast-check';
import { blockSize, decodeBlock, encodeBlock } from '../../../src/coap/block-option.js';
import { Block1Assembler, Block1Status, type BlockLimits } from '../../../src/coap/blockwise.js';
import { readUint } from '../../../src/coap/message.js';
import { must, type FuzzTarget } from '../target.js';

interface Step {
  /** Which of three transfers (peer + URI keys) the block belongs to. */
  key: number;
  option: Buffer;
  payloadLength: number;
  size1?: number;
  /** Milliseconds that pass before this block arrives. */
  advance: number;
  /** Run the expiry sweep before this block. */
  sweep: boolean;
}

export interface BlockInput {
  limits: BlockLimits;
  steps: Step[];
}

const KEYS = ['a|2|up', 'b|2|up', 'a|3|up'];

/** Option values that are mostly well-formed blocks of the few transfers, with random ones among them. */
const optionArbitrary = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({ num: fc.nat(40), more: fc.boolean(), szx: fc.nat(7) })
      .map(({ num, more, szx }) => uintBytes(encodeBlock(num, more, szx))),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 3 }).map((u) => Buffer.from(u)) },
);

function uintBytes(v: number): Buffer {
  const out: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) out.unshift(x & 0xff);
  return Buffer.from(out);
}

const stepArbitrary: fc.Arbitrary<Step> = fc.record(
  {
    key: fc.nat(KEYS.length - 1),
    option: optionArbitrary,
    payloadLength: fc.oneof(fc.constantFrom(0, 16, 32, 64, 128, 256, 512, 1024), fc.nat(1100)),
    size1: fc.nat(5000),
    advance: fc.oneof(fc.constant(0), fc.nat(3000)),
    sweep: fc.boolean(),
  },
  { requiredKeys: ['key', 'option', 'payloadLength', 'advance', 'sweep'] },
);

const limitsArbitrary: fc.Arbitrary<BlockLimits> = fc.record({
  maxBodyBytes: fc.integer({ min: 16, max: 4096 }),
  maxTransfers: fc.integer({ min: 1, max: 3 }),
  maxBytes: fc.integer({ min: 64, max: 8192 }),
  lifetimeMs: fc.integer({ min: 1, max: 5000 }),
  preferredSzx: fc.nat(6),
});

export const coapBlock: FuzzTarget<BlockInput> = {
  name: 'coap-block',
  description: 'Block option decode/encode round trip; Block1Assembler keeps its caps and accounts its bytes',
  shortRuns: 1500,
  seed: (file) => {
    const j = JSON.parse(file.toString()) as { limits: BlockLimits; steps: (Step & { option: string })[] };
    return { limits: j.limits, steps: j.steps.map((s) => ({ ...s, option: Buffer.from(s.option, 'hex') })) };
  },
  arbitrary: (seeds) =>
    fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom(...seeds) },
      {
        weight: 6,
        arbitrary: fc.record({ limits: limitsArbitrary, steps: fc.array(stepArbitrary, { maxLength: 30 }) }),
      },
    ),
  check({ limits, steps }) {
    const caps: string[] = [];
    const a = new Block1Assembler(limits, (cap) => caps.push(cap));
    let now = 1_000_000;
    for (const [i, step] of steps.entries()) {
      now += step.advance;
      if (step.sweep) a.sweep(now);
      const value = readUint(step.option, 0, step.option.length);
      const block = decodeBlock(value);
      must(encodeBlock(block.num, block.more, block.szx) === value, 'block value round trip');
      must(block.szx >= 0 && block.szx <= 7 && block.num < 2 ** 20, 'NUM and SZX within their bits');
      const payload = Buffer.alloc(step.payloadLength, i + 1);
      const r = a.receive(KEYS[step.key], block, payload, step.size1, now);
      must(
        r.szx <= limits.preferredSzx && r.szx <= block.szx,
        'answered SZX no larger than asked or preferred',
      );
      if (r.status === Block1Status.COMPLETE) {
        const body = r.body as Buffer;
        must(r.blocks === 1 || body.length <= limits.maxBodyBytes, 'a reassembled body within maxBodyBytes');
        must(body.subarray(body.length - payload.length).equals(payload), 'body ends with the last payload');
        must(block.num > 0 || body.length === payload.length, 'a single block is the whole body');
        if (block.szx < 7 && r.blocks === 1)
          must(body.length <= blockSize(block.szx), 'one block holds at most one block size');
      }
      must(a.size <= limits.maxTransfers, `${a.size} transfers held, cap ${limits.maxTransfers}`);
      must(a.byteSize >= 0, 'bytes held never negative');
      must(a.byteSize <= Math.max(limits.maxBytes, limits.maxBodyBytes), `${a.byteSize} bytes held`);
      must(a.size > 0 || a.byteSize === 0, `no transfer held but ${a.byteSize} bytes counted`);
    }
    a.clear();
    must(a.size === 0 && a.byteSize === 0, 'clear leaves nothing');
  },
};
