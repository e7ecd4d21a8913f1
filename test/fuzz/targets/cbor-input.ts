/**
 * The untrusted-CBOR check in front of cbor-x (`prepareCbor`, RFC 8949). Both directions:
 *
 * - any input is refused with a DecodeError or accepted, and what it accepts (after its rewriting) cbor-x
 *   decodes keeping CBOR's types without an error; prepared bytes need no second rewrite; the JSON
 *   conversion gives a value that serialises, or refuses (DecodeError) a map key that is an array, a map or
 *   a byte string, the one kind of key with no JSON text form;
 * - every well-formed data item (RFC 8949 §5.3.1: any argument width, indefinite lengths, tags, simple
 *   values, floats) with valid UTF-8 text and nesting within the limit is accepted; nesting one level past
 *   the limit is refused; JSON values encoded by the gateway decode back to themselves.
 */
import fc from 'fast-check';
import { Decoder } from 'cbor-x';
import { DEFAULT_MAX_DEPTH, prepareCbor } from '../../../src/codecs/cbor-input.js';
import { decodeCborJson, encodeCbor } from '../../../src/codecs/cbor-json.js';
import { isDecodeError } from '../../../src/codecs/codec.js';
import { fail, hexFile, must, mutatedSeed, onlyThrows, randomBytes, type FuzzTarget } from '../target.js';

export interface CborInput {
  bytes: Buffer;
  /** 'well-formed': must be accepted; 'too-deep': must be refused; 'json': must decode to this JSON text. */
  expect?: 'well-formed' | 'too-deep' | { json: string };
}

// The gateway's two decoders (`src/codecs/cbor-json.ts`), with the same options.
const objects = new Decoder({ mapsAsObjects: true, useRecords: false });
const maps = new Decoder({ mapsAsObjects: false, useRecords: false });

/** An initial byte and argument with a chosen width (0: in the initial byte when it fits, else 1, 2, 4, 8). */
function head(major: number, value: number, width: number): Buffer {
  const fits = [value < 24, value < 0x100, value < 0x10000, value < 0x100000000, true];
  let w = width;
  while (!fits[w]) w++;
  if (w === 0) return Buffer.of((major << 5) | value);
  const n = [0, 1, 2, 4, 8][w];
  const b = Buffer.alloc(1 + n);
  b[0] = (major << 5) | (23 + w);
  if (n === 8) b.writeBigUInt64BE(BigInt(value), 1);
  else b.writeUIntBE(value, 1, n);
  return b;
}

const width = fc.nat(4);

/** Splits `b` into chunks at the given cut points (for indefinite-length strings). */
function chunks(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (b.length ? c % (b.length + 1) : 0)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

function stringItem(major: 2 | 3, content: Buffer, w: number, indefinite: number[] | null): Buffer {
  if (!indefinite) return Buffer.concat([head(major, content.length, w), content]);
  // Text chunks must each be valid UTF-8: cut text only between characters.
  const parts =
    major === 3
      ? [...content.toString()]
          .map((ch) => Buffer.from(ch))
          .reduce<Buffer[]>((acc, ch, i) => {
            if (i === 0 || indefinite.includes(i)) acc.push(ch);
            else acc[acc.length - 1] = Buffer.concat([acc[acc.length - 1], ch]);
            return acc;
          }, [])
      : chunks(content, indefinite);
  const indefiniteHead = Buffer.of((major << 5) | 31);
  return Buffer.concat([
    indefiniteHead,
    ...parts.flatMap((p) => [head(major, p.length, 0), p]),
    Buffer.of(0xff),
  ]);
}

const leafArbitrary: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.nat(2 ** 32 - 1), width).map(([v, w]) => head(0, v, w)),
  fc.tuple(fc.nat(2 ** 32 - 1), width).map(([v, w]) => head(1, v, w)),
  fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.boolean()).map(([v, neg]) => {
    const b = Buffer.alloc(9);
    b[0] = neg ? 0x3b : 0x1b;
    b.writeBigUInt64BE(v, 1);
    return b;
  }),
  fc
    .tuple(fc.uint8Array({ maxLength: 40 }), width, fc.option(fc.array(fc.nat(), { maxLength: 3 })))
    .map(([v, w, ind]) => stringItem(2, Buffer.from(v), w, ind)),
  fc
    .tuple(
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      width,
      fc.option(fc.array(fc.nat(20), { maxLength: 3 })),
    )
    .map(([s, w, ind]) => stringItem(3, Buffer.from(s), w, ind)),
  // Simple values: 0–23 in the initial byte (20–23 are false, true, null, undefined), 32–255 in one more byte.
  fc.nat(23).map((v) => Buffer.of(0xe0 | v)),
  fc.integer({ min: 32, max: 255 }).map((v) => Buffer.of(0xf8, v)),
  fc.uint8Array({ minLength: 2, maxLength: 2 }).map((u) => Buffer.from([0xf9, ...u])),
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((u) => Buffer.from([0xfa, ...u])),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((u) => Buffer.from([0xfb, ...u])),
);

/** Tag numbers with a meaning somewhere (bignums, expected conversions, cbor-x's own), and any other. */
const tagArbitrary = fc.oneof(
  fc.constantFrom(
    0,
    1,
    2,
    3,
    4,
    5,
    21,
    22,
    23,
    24,
    28,
    29,
    32,
    64,
    105,
    108,
    258,
    259,
    55799,
    0xe000,
    0x10000,
  ),
  fc.nat(2 ** 32 - 1),
);

/** Any well-formed data item, nesting at most `DEFAULT_MAX_DEPTH` levels (each container or tag is one). */
const itemArbitrary: fc.Arbitrary<Buffer> = fc.letrec<{ item: Buffer }>((tie) => ({
  item: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArbitrary,
    fc
      .tuple(fc.array(tie('item'), { maxLength: 5 }), width, fc.boolean())
      .map(([items, w, ind]) =>
        ind
          ? Buffer.concat([Buffer.of(0x9f), ...items, Buffer.of(0xff)])
          : Buffer.concat([head(4, items.length, w), ...items]),
      ),
    fc
      .tuple(fc.array(fc.tuple(tie('item'), tie('item')), { maxLength: 4 }), width, fc.boolean())
      .map(([pairs, w, ind]) =>
        ind
          ? Buffer.concat([Buffer.of(0xbf), ...pairs.flat(), Buffer.of(0xff)])
          : Buffer.concat([head(5, pairs.length, w), ...pairs.flat()]),
      ),
    fc.tuple(tagArbitrary, width, tie('item')).map(([t, w, item]) => Buffer.concat([head(6, t, w), item])),
  ),
})).item;

/** `n` nested one-element arrays around a 0: nesting n levels. */
const deepArbitrary = fc
  .integer({ min: DEFAULT_MAX_DEPTH - 3, max: DEFAULT_MAX_DEPTH + 3 })
  .map((n) => ({ bytes: Buffer.concat([Buffer.alloc(n, 0x81), Buffer.of(0)]), expect: 'too-deep' as const }))
  .map((x) =>
    x.bytes.length - 1 <= DEFAULT_MAX_DEPTH ? { bytes: x.bytes, expect: 'well-formed' as const } : x,
  );

const jsonArbitrary = fc
  .jsonValue({ maxDepth: 5 })
  .filter((v) => !JSON.stringify(v).includes('"__proto__"'))
  .map((v) => ({ bytes: encodeCbor(v), expect: { json: JSON.stringify(v) } }));

export const cborInput: FuzzTarget<CborInput> = {
  name: 'cbor-input',
  description:
    'prepareCbor: DecodeError or bytes cbor-x decodes; every well-formed item within the depth accepted',
  shortRuns: 3000,
  seed: (file) => ({ bytes: hexFile(file) }),
  arbitrary: (seeds) =>
    fc.oneof(
      { weight: 3, arbitrary: mutatedSeed(seeds.map((s) => s.bytes)).map((bytes) => ({ bytes })) },
      { weight: 1, arbitrary: randomBytes(60).map((bytes) => ({ bytes })) },
      { weight: 3, arbitrary: itemArbitrary.map((bytes) => ({ bytes, expect: 'well-formed' as const })) },
      { weight: 1, arbitrary: itemArbitrary.chain((b) => mutatedSeed([b], 3)).map((bytes) => ({ bytes })) },
      { weight: 1, arbitrary: deepArbitrary },
      { weight: 1, arbitrary: jsonArbitrary },
    ),
  check({ bytes, expect }) {
    const out = onlyThrows(() => prepareCbor(bytes), isDecodeError, 'prepareCbor');
    if (out === undefined) {
      if (expect !== undefined && expect !== 'too-deep') fail(`a ${JSON.stringify(expect)} item was refused`);
      return;
    }
    must(expect !== 'too-deep', 'an item nested past the limit was accepted');
    try {
      maps.decode(out);
    } catch (err) {
      fail(`cbor-x cannot decode what prepareCbor accepted (${out.toString('hex')}): ${String(err)}`);
    }
    must(prepareCbor(out) === out, 'prepared bytes need no second rewrite');
    let json: string;
    try {
      objects.decode(out);
      json = JSON.stringify(decodeCborJson(bytes));
    } catch (err) {
      // A map key that is an array, a map or a byte string has no JSON object form: the one refusal allowed
      // (cbor-x's own check of property names; the codec tests pin its message).
      must(
        /Invalid property name/.test(String(err)),
        `JSON conversion refused ${out.toString('hex')}: ${err}`,
      );
      must(onlyThrows(() => decodeCborJson(bytes), isDecodeError, 'decodeCborJson') === undefined, 'refused');
      return;
    }
    if (typeof expect === 'object') must(json === expect.json, `decodes to ${json}, not ${expect.json}`);
  },
};
