/**
 * One outbox record on disk: `u32 length | u32 crc32(payload) | payload`, big-endian, where the payload is
 * `u8 version | u64 appendedAt (ms) | u16 len + id | u16 len + topic | u16 len + deviceId | u16 len + thing |
 * body`. A record is written with one Buffer and read back without copying the body.
 */
import type { Envelope } from '../envelope.js';
import { messageBody, type PublishMessage } from '../publisher.js';

export const RECORD_HEADER = 8;
const VERSION = 1;
const FIXED = 1 + 8 + 4 * 2;
/** Largest payload a record may hold (far above IoT Core's 128 KB message limit). */
export const MAX_RECORD_PAYLOAD = 16 * 1024 * 1024;

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, the zlib/PNG one) of `buf[start, end)`. */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** A message read back from the outbox. Its envelope is parsed from the body only if someone asks. */
export class StoredMessage implements PublishMessage {
  constructor(
    readonly id: string,
    readonly topic: string,
    readonly deviceId: string,
    readonly thing: string,
    readonly body: Buffer,
    readonly appendedAt: number,
  ) {}

  get envelope(): Envelope {
    return JSON.parse(this.body.toString('utf8')) as Envelope;
  }
}

/** Encodes a message as one record; throws when a field does not fit. */
export function encodeRecord(msg: PublishMessage, appendedAt: number): Buffer {
  const body = messageBody(msg);
  const idLen = Buffer.byteLength(msg.id);
  const topicLen = Buffer.byteLength(msg.topic);
  const devLen = Buffer.byteLength(msg.deviceId);
  const thingLen = Buffer.byteLength(msg.thing);
  if (Math.max(idLen, topicLen, devLen, thingLen) > 0xffff)
    throw new Error('message field too long for the outbox');
  const payloadLen = FIXED + idLen + topicLen + devLen + thingLen + body.length;
  if (payloadLen > MAX_RECORD_PAYLOAD)
    throw new Error(`message of ${body.length} bytes is too large for the outbox`);
  const buf = Buffer.allocUnsafe(RECORD_HEADER + payloadLen);
  buf.writeUInt32BE(payloadLen, 0);
  let o = RECORD_HEADER;
  buf[o++] = VERSION;
  buf.writeUIntBE(Math.floor(appendedAt / 0x10000), o, 6);
  buf.writeUInt16BE(appendedAt % 0x10000, o + 6);
  o += 8;
  o = writeString(buf, o, msg.id, idLen);
  o = writeString(buf, o, msg.topic, topicLen);
  o = writeString(buf, o, msg.deviceId, devLen);
  o = writeString(buf, o, msg.thing, thingLen);
  body.copy(buf, o);
  buf.writeUInt32BE(crc32(buf, RECORD_HEADER), 4);
  return buf;
}

function writeString(buf: Buffer, o: number, s: string, len: number): number {
  buf.writeUInt16BE(len, o);
  buf.write(s, o + 2, len, 'utf8');
  return o + 2 + len;
}

export type RecordDecodeResult =
  | { kind: 'record'; msg: StoredMessage; size: number }
  /** More bytes are needed to see the whole record. */
  | { kind: 'short'; need: number }
  | { kind: 'corrupt'; reason: string };

/** Decodes the record at `buf[at]`; the message's body is a view into `buf`. */
export function decodeRecord(buf: Buffer, at: number): RecordDecodeResult {
  if (buf.length - at < RECORD_HEADER) return { kind: 'short', need: RECORD_HEADER };
  const payloadLen = buf.readUInt32BE(at);
  if (payloadLen < FIXED || payloadLen > MAX_RECORD_PAYLOAD)
    return { kind: 'corrupt', reason: `bad length ${payloadLen}` };
  const end = at + RECORD_HEADER + payloadLen;
  if (end > buf.length) return { kind: 'short', need: RECORD_HEADER + payloadLen };
  if (crc32(buf, at + RECORD_HEADER, end) !== buf.readUInt32BE(at + 4))
    return { kind: 'corrupt', reason: 'checksum mismatch' };
  let o = at + RECORD_HEADER;
  if (buf[o++] !== VERSION) return { kind: 'corrupt', reason: `unknown record version ${buf[o - 1]}` };
  const appendedAt = buf.readUIntBE(o, 6) * 0x10000 + buf.readUInt16BE(o + 6);
  o += 8;
  const fields: string[] = [];
  for (let i = 0; i < 4; i++) {
    if (o + 2 > end) return { kind: 'corrupt', reason: 'field overruns the record' };
    const len = buf.readUInt16BE(o);
    o += 2;
    if (o + len > end) return { kind: 'corrupt', reason: 'field overruns the record' };
    fields.push(buf.toString('utf8', o, o + len));
    o += len;
  }
  const msg = new StoredMessage(fields[0], fields[1], fields[2], fields[3], buf.subarray(o, end), appendedAt);
  return { kind: 'record', msg, size: end - at };
}
