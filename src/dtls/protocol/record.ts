/**
 * The DTLS record header codec (RFC 6347 §4.1, RFC 9146 §4). A datagram holds one or more records; the
 * reader walks them in place without copying. Connection IDs are handled as latin1 strings (one char per
 * byte): compact, usable as map keys, written back with `buf.write(cid, offset, 'latin1')`.
 */
import { ContentType, RECORD_HEADER_BYTES } from './constants.js';

/** One record's header, filled in place by `readRecord` (one instance is reused per datagram). */
export class RecordHeader {
  type = 0;
  version = 0;
  epoch = 0;
  /** 48-bit sequence number (exact in a double). */
  seq = 0;
  /** Offset of the record in the datagram, and of its 8 epoch+sequence bytes. */
  start = 0;
  /** Connection ID (tls12_cid records), as a latin1 string; '' otherwise. */
  cid = '';
  /** Offset and length of the record body (fragment). */
  bodyOffset = 0;
  bodyLength = 0;
}

export const enum ReadResult {
  /** Not enough bytes for a header or the body: the rest of the datagram is dropped. */
  Truncated = -1,
  /** Header is not DTLS (version high byte not 0xfe). */
  NotDtls = -2,
}

/**
 * Reads the record header at `offset`. `cidLength` is the length of the server's Connection IDs, which a
 * tls12_cid record carries without a length byte. Returns the offset of the next record, or a ReadResult.
 */
export function readRecord(buf: Buffer, offset: number, cidLength: number, out: RecordHeader): number {
  if (buf.length - offset < RECORD_HEADER_BYTES) return ReadResult.Truncated;
  const type = buf[offset];
  if (buf[offset + 1] !== 0xfe) return ReadResult.NotDtls;
  let p = offset + 11;
  let cid = '';
  if (type === ContentType.tls12Cid) {
    if (buf.length - offset < RECORD_HEADER_BYTES + cidLength) return ReadResult.Truncated;
    cid = buf.toString('latin1', p, p + cidLength);
    p += cidLength;
  }
  const length = buf.readUInt16BE(p);
  p += 2;
  if (p + length > buf.length) return ReadResult.Truncated;
  out.type = type;
  out.version = buf.readUInt16BE(offset + 1);
  out.epoch = buf.readUInt16BE(offset + 3);
  out.seq = buf.readUInt16BE(offset + 5) * 0x1_0000_0000 + buf.readUInt32BE(offset + 7);
  out.start = offset;
  out.cid = cid;
  out.bodyOffset = p;
  out.bodyLength = length;
  return p + length;
}

/** Writes a 48-bit sequence number at `offset`. */
export function writeSeq48(buf: Buffer, offset: number, seq: number): void {
  buf.writeUInt16BE(Math.floor(seq / 0x1_0000_0000), offset);
  buf.writeUInt32BE(seq >>> 0, offset + 2);
}

/**
 * Writes a record header at `offset` and returns the offset of the body. With a non-empty `cid` the record
 * is a tls12_cid record and `type` must be ContentType.tls12Cid.
 */
export function writeRecordHeader(
  buf: Buffer,
  offset: number,
  type: number,
  version: number,
  epoch: number,
  seq: number,
  cid: string,
  length: number,
): number {
  buf[offset] = type;
  buf.writeUInt16BE(version, offset + 1);
  buf.writeUInt16BE(epoch, offset + 3);
  writeSeq48(buf, offset + 5, seq);
  let p = offset + 11;
  if (cid.length > 0) p += buf.write(cid, p, 'latin1');
  buf.writeUInt16BE(length, p);
  return p + 2;
}
