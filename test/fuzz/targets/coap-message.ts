/**
 * CoAP `parseMessage` (RFC 7252 §3): any datagram yields a message or a FormatError, never an exception; a
 * message's option ranges lie inside the datagram in non-decreasing number order; and because the format
 * has one encoding per message, re-encoding what was parsed gives the datagram back byte for byte. Messages
 * built from random fields survive encode → parse unchanged.
 */
import fc from 'fast-check';
import { MessageType } from '../../../src/coap/constants.js';
import {
  CoapMessage,
  encodeMessage,
  FormatError,
  parseMessage,
  type OutgoingMessage,
} from '../../../src/coap/message.js';
import { hexFile, must, mutatedSeed, randomBytes, type FuzzTarget } from '../target.js';

export interface CoapInput {
  data: Buffer;
  /** The message `data` was encoded from, when it was built from fields (then it must parse back). */
  built?: OutgoingMessage & { options: [number, Buffer][] };
}

/** Codes of every class a request or response may have (not 0.00, not the reserved classes 1, 6, 7). */
const codeArbitrary = fc.oneof(
  fc.integer({ min: 1, max: 31 }),
  fc.integer({ min: 64, max: 191 }),
  fc.constantFrom(1, 2, 3, 4, 65, 68, 69, 95, 132, 160),
);

const optionArbitrary = fc.tuple(
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 60 }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 3000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xffff }) },
  ),
  fc.oneof(
    { weight: 8, arbitrary: fc.uint8Array({ maxLength: 20 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 260, maxLength: 600 }) },
  ),
);

const builtArbitrary: fc.Arbitrary<CoapInput> = fc
  .record({
    type: fc.constantFrom(MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST),
    code: codeArbitrary,
    messageId: fc.nat(0xffff),
    token: fc.uint8Array({ maxLength: 8 }),
    options: fc.array(optionArbitrary, { maxLength: 6 }),
    payload: fc.uint8Array({ maxLength: 100 }),
  })
  .map((m) => {
    const built = {
      ...m,
      token: Buffer.from(m.token),
      payload: Buffer.from(m.payload),
      options: m.options.map(([n, v]) => [n, Buffer.from(v)] as [number, Buffer]),
    };
    return { data: encodeMessage(built), built };
  });

/** A datagram of random bytes, mostly with version 1 so the parser goes past the first byte. */
const datagramArbitrary = fc.tuple(randomBytes(64), fc.boolean()).map(([d, v1]) => {
  if (v1 && d.length > 0) d[0] = (d[0] & 0x3f) | 0x40;
  return d;
});

function checkParsed(data: Buffer, m: CoapMessage): void {
  const n = m.optNumbers.length;
  must(m.optStarts.length === n && m.optEnds.length === n, 'one start and end per option');
  for (let k = 0; k < n; k++) {
    must(m.optStarts[k] <= m.optEnds[k] && m.optEnds[k] <= data.length, 'option value inside the datagram');
    must(k === 0 || m.optNumbers[k] >= m.optNumbers[k - 1], 'option numbers in order');
    must(m.optNumbers[k] <= 0xffff, 'option numbers fit 16 bits');
  }
  must(m.payloadStart <= data.length, 'payload inside the datagram');
  must(m.tokenLength <= 8, 'token of at most 8 bytes');
  const again = encodeMessage({
    type: m.type,
    code: m.code,
    messageId: m.messageId,
    token: m.token,
    options: m.optNumbers.map((num, k) => [num, data.subarray(m.optStarts[k], m.optEnds[k])] as const),
    payload: m.payload,
  });
  must(again.equals(data), `re-encoding gives ${again.toString('hex')}, not the datagram`);
}

export const coapMessage: FuzzTarget<CoapInput> = {
  name: 'coap-message',
  description: 'parseMessage: message or FormatError, ranges in bounds, parse → encode is the identity',
  shortRuns: 4000,
  seed: (file) => ({ data: hexFile(file) }),
  arbitrary: (seeds) =>
    fc.oneof(
      { weight: 3, arbitrary: mutatedSeed(seeds.map((s) => s.data)).map((data) => ({ data })) },
      { weight: 2, arbitrary: datagramArbitrary.map((data) => ({ data })) },
      { weight: 2, arbitrary: builtArbitrary },
    ),
  check({ data, built }) {
    const m = parseMessage(data);
    if (m instanceof FormatError) {
      must(!built, `a built message does not parse: ${m.reason}`);
      must((m.type === -1) === data.length < 4, 'the type is known exactly when the header is there');
      must(
        !m.silent || data.length < 4 || data[0] >> 6 !== 1,
        'only short or foreign-version input is silent',
      );
      return;
    }
    must(m instanceof CoapMessage, 'a CoapMessage or a FormatError');
    checkParsed(data, m);
    if (!built) return;
    must(m.type === built.type && m.code === built.code && m.messageId === built.messageId, 'header fields');
    must(
      m.token.equals(built.token as Buffer) && m.payload.equals(built.payload as Buffer),
      'token, payload',
    );
    const sorted = [...built.options].sort((a, b) => a[0] - b[0]);
    must(m.optNumbers.join() === sorted.map((o) => o[0]).join(), 'option numbers');
    sorted.forEach((o, k) => must(data.subarray(m.optStarts[k], m.optEnds[k]).equals(o[1]), 'option value'));
  },
};
