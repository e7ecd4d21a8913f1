/**
 * The fixed fields of a raw UDP frame (`src/udp/frame.ts`) under any layout the configuration allows and any
 * datagram: the device id and frame counter are read or refused without an exception; an id is digits (BCD),
 * hex of the field, or printable ASCII; a BCD id written back with `toBcd` gives the field it was read from
 * (one way to write each id, so two frames never name one device by different bytes); digits written by
 * `toBcd` read back as themselves.
 */
import fc from 'fast-check';
import {
  bcdDigits,
  frameCounter,
  frameId,
  payloadOffset,
  toBcd,
  type FrameLayout,
} from '../../../src/udp/frame.js';
import { hexFile, must, mutatedSeed, randomBytes, type FuzzTarget } from '../target.js';

export interface FrameInput {
  layout: FrameLayout;
  datagram: Buffer;
  /** Digits written with `toBcd` into the id field: they must read back. */
  digits?: string;
}

const ENCODINGS = ['bcd', 'bcd-swapped', 'ascii', 'hex'] as const;

const layoutArbitrary: fc.Arbitrary<FrameLayout> = fc.record(
  {
    id: fc.record({
      offset: fc.nat(12),
      length: fc.integer({ min: 1, max: 12 }),
      encoding: fc.constantFrom(...ENCODINGS),
      field: fc.constantFrom('imei', 'imsi', 'iccid', 'msisdn', 'id'),
    }),
    counter: fc.record({ offset: fc.nat(16), bytes: fc.constantFrom(2, 4) }),
    payloadOffset: fc.nat(32),
  },
  { requiredKeys: [] },
) as fc.Arbitrary<FrameLayout>;

/** The usual layout: an 8-byte BCD IMEI, then a 2-byte counter. */
const IMEI_LAYOUT = {
  id: { offset: 0, length: 8, encoding: 'bcd', field: 'imei' },
  counter: { offset: 8, bytes: 2 },
} as FrameLayout;

const writtenArbitrary: fc.Arbitrary<FrameInput> = fc
  .tuple(layoutArbitrary, fc.stringMatching(/^[0-9]{1,24}$/), randomBytes(40), fc.boolean())
  .map(([layout, digits, datagram, swapped]) => {
    const id = {
      offset: 0,
      length: 12,
      field: 'imei',
      ...layout.id,
      encoding: swapped ? 'bcd-swapped' : 'bcd',
    };
    const d = digits.slice(0, 2 * id.length);
    const b = Buffer.concat([Buffer.alloc(id.offset), toBcd(d, id.length, swapped), datagram]);
    return { layout: { ...layout, id } as FrameLayout, datagram: b, digits: d };
  });

export const udpFrame: FuzzTarget<FrameInput> = {
  name: 'udp-frame',
  description: 'frameId / frameCounter / bcdDigits under any layout: no exception, one encoding per id',
  shortRuns: 3000,
  seed: (file) => ({ layout: IMEI_LAYOUT, datagram: hexFile(file) }),
  arbitrary: (seeds) =>
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          layout: fc.oneof(fc.constant(IMEI_LAYOUT), layoutArbitrary),
          datagram: mutatedSeed(seeds.map((s) => s.datagram)),
        }),
      },
      { weight: 2, arbitrary: fc.record({ layout: layoutArbitrary, datagram: randomBytes(40) }) },
      { weight: 2, arbitrary: writtenArbitrary },
    ),
  check({ layout, datagram, digits }) {
    const id = frameId(datagram, layout);
    const counter = frameCounter(datagram, layout);
    must(payloadOffset(layout) >= 0, 'payload offset');
    if (counter !== undefined)
      must(Number.isInteger(counter) && counter >= 0 && counter < 2 ** 32, 'counter');
    const f = layout.id;
    if (!f || datagram.length < f.offset + f.length) {
      must(id === undefined, 'no id without the whole field');
      return;
    }
    const field = datagram.subarray(f.offset, f.offset + f.length);
    if (digits !== undefined && digits.length > 0) must(id === digits, `digits ${digits} read back as ${id}`);
    if (id === undefined) return;
    switch (f.encoding) {
      case 'bcd':
      case 'bcd-swapped': {
        must(/^[0-9]+$/.test(id) && id.length <= 2 * f.length, `BCD id ${id}`);
        const swapped = f.encoding === 'bcd-swapped';
        must(bcdDigits(field, swapped) === id, 'bcdDigits is frameId');
        const again = toBcd(id, f.length, swapped);
        must(
          again.equals(field),
          `id ${id} writes back as ${again.toString('hex')}, read from ${field.toString('hex')}`,
        );
        break;
      }
      case 'hex':
        must(id === field.toString('hex'), 'hex id');
        break;
      case 'ascii':
        must(/^[\x21-\x7e]+$/.test(id) && id.length <= f.length, `ASCII id ${JSON.stringify(id)}`);
        break;
    }
  },
};
