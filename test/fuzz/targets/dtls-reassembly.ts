/**
 * Handshake reassembly (RFC 6347 §4.2.3) under hostile fragments: the fragments of a few real messages in
 * any order, repeated and overlapping, mixed with forged ones (other lengths, types, far-ahead sequence
 * numbers, random bytes). Nothing throws; the shared byte budget never goes negative or over its limit and
 * is whole again after `clear`; messages come out in order; and when no forged fragment was sent, every
 * message comes out whole with its original bytes.
 */
import fc from 'fast-check';
import { HandshakeHeader, readHandshakeHeader } from '../../../src/dtls/protocol/handshake.js';
import { Reassembler, ReassemblyBudget } from '../../../src/dtls/server/reassembly.js';
import { must, type FuzzTarget } from '../target.js';

interface Fragment {
  seq: number;
  type: number;
  length: number;
  offset: number;
  bytes: Buffer;
}

export interface ReassemblyInput {
  /** Bodies of the messages 0, 1, 2… (type = index + 1). */
  messages: Buffer[];
  /** Fragments in arrival order. */
  fragments: Fragment[];
  /** True when every fragment is a piece of one of the messages. */
  honest: boolean;
  budget: number;
  maxMessageBytes: number;
}

/** The fragment as it sits in a record: a 12-byte handshake header, then the bytes. */
function wire(f: Fragment): Buffer {
  const b = Buffer.alloc(12 + f.bytes.length);
  b[0] = f.type;
  b.writeUIntBE(f.length, 1, 3);
  b.writeUInt16BE(f.seq, 4);
  b.writeUIntBE(f.offset, 6, 3);
  b.writeUIntBE(f.bytes.length, 9, 3);
  f.bytes.copy(b, 12);
  return b;
}

/** A piece [from, to) of message `seq` (positions scaled to its length, so they shrink with it). */
const pieceArbitrary = fc.record({ message: fc.nat(), from: fc.nat(1000), span: fc.nat(1000) });

const inputArbitrary: fc.Arbitrary<ReassemblyInput> = fc
  .record({
    messages: fc.array(
      fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
      { minLength: 1, maxLength: 4 },
    ),
    pieces: fc.array(pieceArbitrary, { maxLength: 40 }),
    forged: fc.array(
      fc.record({
        seq: fc.nat(8),
        type: fc.nat(3),
        length: fc.nat(400),
        offset: fc.nat(400),
        bytes: fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.from(u)),
      }),
      { maxLength: 6 },
    ),
    budget: fc.oneof(fc.constant(1 << 20), fc.nat(800)),
    maxMessageBytes: fc.oneof(fc.constant(4096), fc.nat(300)),
  })
  .map(({ messages, pieces, forged, budget, maxMessageBytes }) => {
    const fragments: Fragment[] = pieces.map((p) => {
      const seq = p.message % messages.length;
      const m = messages[seq];
      const from = Math.floor((p.from / 1000) * m.length);
      const to = Math.min(m.length, from + Math.ceil((p.span / 1000) * m.length));
      return { seq, type: seq + 1, length: m.length, offset: from, bytes: m.subarray(from, to) };
    });
    // Then every message once more whole, so an honest run always has all its bytes.
    messages.forEach((m, seq) =>
      fragments.push({ seq, type: seq + 1, length: m.length, offset: 0, bytes: m }),
    );
    const valid = forged.filter((f) => f.offset + f.bytes.length <= f.length);
    valid.forEach((f, i) => fragments.splice((i * 7) % (fragments.length + 1), 0, f));
    return { messages, fragments, honest: valid.length === 0, budget, maxMessageBytes };
  });

export const dtlsReassembly: FuzzTarget<ReassemblyInput> = {
  name: 'dtls-reassembly',
  description:
    'Reassembler: budget within [0, limit] and whole after clear; honest fragments give the messages',
  shortRuns: 1500,
  seed: (file) => {
    const j = JSON.parse(file.toString()) as {
      messages: string[];
      fragments: (Fragment & { bytes: string })[];
    };
    const messages = j.messages.map((m) => Buffer.from(m, 'hex'));
    const fragments = j.fragments.map((f) => ({ ...f, bytes: Buffer.from(f.bytes, 'hex') }));
    return { messages, fragments, honest: true, budget: 1 << 20, maxMessageBytes: 4096 };
  },
  arbitrary: (seeds) =>
    fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...seeds) }, { weight: 8, arbitrary: inputArbitrary }),
  check({ messages, fragments, honest, budget: limit, maxMessageBytes }) {
    const budget = new ReassemblyBudget(limit);
    const r = new Reassembler(0, maxMessageBytes, budget);
    const h = new HandshakeHeader();
    const taken: Buffer[] = [];
    for (const f of fragments) {
      const w = wire(f);
      must(readHandshakeHeader(w, 0, w.length, h) === w.length, 'the fragment header reads back');
      r.add(h, w);
      for (let m = r.take(); m; m = r.take()) {
        must(m.messageSeq === taken.length, 'messages come out in order');
        taken.push(Buffer.from(m.body));
        if (honest) must(m.body.equals(messages[m.messageSeq]), `message ${m.messageSeq} has its bytes`);
      }
      must(budget.used >= 0 && budget.used <= limit, `budget at ${budget.used} of ${limit}`);
    }
    const fits = messages.every((m) => m.length <= maxMessageBytes);
    const roomy = messages.reduce((n, m) => n + m.length, 0) <= limit;
    if (honest && fits && roomy) must(taken.length === messages.length, 'every message comes out');
    r.clear();
    must(budget.used === 0, `${budget.used} bytes still charged after clear`);
  },
};
