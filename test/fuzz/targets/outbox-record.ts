/**
 * The outbox record decoder (`src/publish/outbox/record.ts`), which reads back files a crash may have torn
 * or a disk may have damaged: at any offset it returns a record, "short" or "corrupt", never throws; a
 * record lies inside the buffer and re-encodes to exactly its bytes; records of random messages decode to
 * those messages. Mutated records get their checksum fixed half the time, so the fields behind the CRC are
 * fuzzed too (as a damaged file that happens to match its checksum, or a bug in the writer, would present).
 */
import fc from 'fast-check';
import { crc32, decodeRecord, encodeRecord, RECORD_HEADER } from '../../../src/publish/outbox/record.js';
import type { Envelope } from '../../../src/publish/envelope.js';
import { hexFile, must, mutatedSeed, randomBytes, type FuzzTarget } from '../target.js';

export interface OutboxInput {
  /** One or more records, or anything else. */
  bytes: Buffer;
  /** Where to decode from (modulo the length + 1). */
  at: number;
  /** Write the right CRC over the (mutated) first record before decoding. */
  fixCrc: boolean;
  /** The message the first record was encoded from. */
  built?: { id: string; topic: string; deviceId: string; thing: string; body: Buffer; appendedAt: number };
}

const text = fc.string({ unit: 'grapheme', maxLength: 40 });

const builtArbitrary: fc.Arbitrary<OutboxInput> = fc
  .record({
    id: text,
    topic: text,
    deviceId: text,
    thing: text,
    body: fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
    appendedAt: fc.nat(2 ** 53 - 1),
  })
  .map((built) => ({
    bytes: encodeRecord({ ...built, envelope: undefined as unknown as Envelope }, built.appendedAt),
    at: 0,
    fixCrc: false,
    built,
  }));

function withCrc(b: Buffer): Buffer {
  if (b.length < RECORD_HEADER) return b;
  const end = Math.min(b.length, RECORD_HEADER + b.readUInt32BE(0));
  b.writeUInt32BE(crc32(b, RECORD_HEADER, end), 4);
  return b;
}

export const outboxRecord: FuzzTarget<OutboxInput> = {
  name: 'outbox-record',
  description:
    'decodeRecord: record / short / corrupt at any offset, never throws; records re-encode exactly',
  shortRuns: 3000,
  seed: (file) => ({ bytes: hexFile(file), at: 0, fixCrc: false }),
  arbitrary: (seeds) =>
    fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          bytes: mutatedSeed(seeds.map((s) => s.bytes)),
          at: fc.oneof(fc.constant(0), fc.nat()),
          fixCrc: fc.boolean(),
        }),
      },
      { weight: 1, arbitrary: fc.record({ bytes: randomBytes(80), at: fc.nat(), fixCrc: fc.boolean() }) },
      { weight: 2, arbitrary: builtArbitrary },
    ),
  check({ bytes, at: where, fixCrc, built }) {
    const buf = fixCrc ? withCrc(Buffer.from(bytes)) : bytes;
    const at = where % (buf.length + 1);
    const r = decodeRecord(buf, at);
    if (built) {
      must(r.kind === 'record', `a built record decodes (${r.kind})`);
    }
    if (r.kind === 'short') {
      must(at + r.need > buf.length, 'short only when the record runs past the end');
      return;
    }
    if (r.kind === 'corrupt') return;
    must(r.size >= RECORD_HEADER && at + r.size <= buf.length, 'the record lies inside the buffer');
    const m = r.msg;
    // Fields that were not UTF-8 read as U+FFFD, and times past 2^53 ms are not exact in a double: the writer
    // makes neither, only a forged checksum lets them through.
    const exact = Number.isSafeInteger(m.appendedAt);
    if (exact && ![m.id, m.topic, m.deviceId, m.thing].some((s) => s.includes('\ufffd'))) {
      const again = encodeRecord(m, m.appendedAt);
      must(again.equals(buf.subarray(at, at + r.size)), 'the record re-encodes to its bytes');
    }
    if (!built) return;
    must(m.id === built.id && m.topic === built.topic, 'id and topic');
    must(m.deviceId === built.deviceId && m.thing === built.thing, 'device and thing');
    must(m.body.equals(built.body) && m.appendedAt === built.appendedAt, 'body and time');
  },
};
