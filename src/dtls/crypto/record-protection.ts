/**
 * AEAD record protection for DTLS 1.2 (RFC 5246 §6.2.3.3, RFC 6655, RFC 5288) and the RFC 9146 tls12_cid
 * record (inner plaintext `content | real_type | zeros`, its own additional data). Nonce = 4-byte salt from
 * the key block | 8-byte explicit nonce; the sender uses epoch+sequence as the explicit nonce.
 *
 * Keys are laid out like the AEAD key block (client key, server key, client salt, server salt) at offset
 * `at` of a buffer. Scratch buffers for nonce and additional data are reused (Node copies them).
 *
 * CCM suites run on the WebAssembly SIMD AES (`ccm.ts`); GCM, and CCM where WebAssembly SIMD is missing, on a
 * one-shot Node cipher per record.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { ContentType } from '../protocol/constants.js';
import { ccmFits, ccmOpen, ccmSeal } from './ccm.js';
import { writeRecordHeader, writeSeq48, type RecordHeader } from '../protocol/record.js';
import { EXPLICIT_NONCE_LENGTH, KEY_LENGTH, SALT_LENGTH, type CipherSuite } from './cipher-suites.js';

/** Which side wrote a record: selects the write key and salt from the key block. */
export const enum Side {
  Client = 0,
  Server = 1,
}

const nonce = Buffer.alloc(SALT_LENGTH + EXPLICIT_NONCE_LENGTH);
const aad13 = Buffer.alloc(13);
/** CID additional data scratch, by CID length. */
const cidAads: Buffer[] = [];
/** Inner plaintext scratch for tls12_cid records (content | real_type). */
let inner = Buffer.alloc(2048);

/** Where `side`'s write key starts in the key block at `at`. */
function writeKeyAt(at: number, side: Side): number {
  return at + side * KEY_LENGTH;
}

function writeKey(keys: Buffer, at: number, side: Side): Buffer {
  const start = writeKeyAt(at, side);
  return keys.subarray(start, start + KEY_LENGTH);
}

function setSalt(keys: Buffer, at: number, side: Side): void {
  const start = at + 2 * KEY_LENGTH + side * SALT_LENGTH;
  keys.copy(nonce, 0, start, start + SALT_LENGTH);
}

/** Additional data of a record without CID: seq_num(epoch+seq) | type | version | length. */
export function writeAdditionalData(
  out: Buffer,
  type: number,
  version: number,
  epoch: number,
  seq: number,
  length: number,
): Buffer {
  out.writeUInt16BE(epoch, 0);
  writeSeq48(out, 2, seq);
  out[8] = type;
  out.writeUInt16BE(version, 9);
  out.writeUInt16BE(length, 11);
  return out;
}

/**
 * Additional data of a tls12_cid record (RFC 9146 §5): seq_num_placeholder (8 × 0xff) | tls12_cid |
 * cid_length | tls12_cid | version | epoch | sequence_number | cid | length_of_DTLSInnerPlaintext.
 */
export function writeCidAdditionalData(
  out: Buffer,
  version: number,
  epoch: number,
  seq: number,
  cid: string,
  innerLength: number,
): Buffer {
  out.fill(0xff, 0, 8);
  out[8] = ContentType.tls12Cid;
  out[9] = cid.length;
  out[10] = ContentType.tls12Cid;
  out.writeUInt16BE(version, 11);
  out.writeUInt16BE(epoch, 13);
  writeSeq48(out, 15, seq);
  const p = 21 + out.write(cid, 21, 'latin1');
  out.writeUInt16BE(innerLength, p);
  return out;
}

function cidAad(cidLength: number): Buffer {
  let b = cidAads[cidLength];
  if (!b) {
    b = Buffer.alloc(23 + cidLength);
    cidAads[cidLength] = b;
  }
  return b;
}

/**
 * Protects `content` of `type` into one record. With a non-empty `cid` the record is a tls12_cid record.
 * Returns the whole record (header included), ready to be sent or packed into a datagram.
 */
export function sealRecord(
  suite: CipherSuite,
  keys: Buffer,
  at: number,
  side: Side,
  type: number,
  version: number,
  epoch: number,
  seq: number,
  cid: string,
  content: Buffer,
): Buffer {
  let plaintext = content;
  let aad: Buffer;
  if (cid.length > 0) {
    const n = content.length + 1;
    if (inner.length < n) inner = Buffer.alloc(Math.max(n, inner.length * 2));
    content.copy(inner, 0);
    inner[content.length] = type;
    plaintext = inner.subarray(0, n);
    aad = writeCidAdditionalData(cidAad(cid.length), version, epoch, seq, cid, n);
  } else {
    aad = writeAdditionalData(aad13, type, version, epoch, seq, content.length);
  }
  setSalt(keys, at, side);
  nonce.writeUInt16BE(epoch, SALT_LENGTH);
  writeSeq48(nonce, SALT_LENGTH + 2, seq);
  const cidRecordType = cid.length > 0 ? ContentType.tls12Cid : type;
  if (suite.ccm && ccmFits(plaintext.length, aad.length)) {
    const bodyLength = EXPLICIT_NONCE_LENGTH + plaintext.length + suite.tagLength;
    const out = Buffer.allocUnsafe(13 + cid.length + bodyLength);
    let p = writeRecordHeader(out, 0, cidRecordType, version, epoch, seq, cid, bodyLength);
    p += nonce.copy(out, p, SALT_LENGTH);
    ccmSeal(keys, writeKeyAt(at, side), nonce, aad, plaintext, suite.tagLength, out, p);
    return out;
  }
  const key = writeKey(keys, at, side);
  let ct: Buffer;
  let tag: Buffer;
  if (suite.ccm) {
    const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: suite.tagLength });
    c.setAAD(aad, { plaintextLength: plaintext.length });
    ct = c.update(plaintext);
    c.final();
    tag = c.getAuthTag();
  } else {
    const c = createCipheriv('aes-128-gcm', key, nonce);
    c.setAAD(aad);
    ct = c.update(plaintext);
    c.final();
    tag = c.getAuthTag();
  }
  const bodyLength = EXPLICIT_NONCE_LENGTH + ct.length + tag.length;
  const out = Buffer.allocUnsafe(13 + cid.length + bodyLength);
  let p = writeRecordHeader(out, 0, cidRecordType, version, epoch, seq, cid, bodyLength);
  p += nonce.copy(out, p, SALT_LENGTH);
  p += ct.copy(out, p);
  tag.copy(out, p);
  return out;
}

/**
 * Opens the protected record `rec` of `buf` written by `side`. Returns the content, or undefined when it
 * does not authenticate. For a tls12_cid record it sets `rec.type` to the real content type from the inner
 * plaintext (undefined when the inner plaintext has none).
 */
export function openRecord(
  suite: CipherSuite,
  keys: Buffer,
  at: number,
  side: Side,
  buf: Buffer,
  rec: RecordHeader,
): Buffer | undefined {
  const ctLength = rec.bodyLength - EXPLICIT_NONCE_LENGTH - suite.tagLength;
  if (ctLength < 0) return undefined;
  const body = rec.bodyOffset;
  const cidRecord = rec.type === ContentType.tls12Cid;
  const aad = cidRecord
    ? writeCidAdditionalData(cidAad(rec.cid.length), rec.version, rec.epoch, rec.seq, rec.cid, ctLength)
    : writeAdditionalData(aad13, rec.type, rec.version, rec.epoch, rec.seq, ctLength);
  setSalt(keys, at, side);
  buf.copy(nonce, SALT_LENGTH, body, body + EXPLICIT_NONCE_LENGTH);
  const ctStart = body + EXPLICIT_NONCE_LENGTH;
  const ct = buf.subarray(ctStart, ctStart + ctLength);
  const tag = buf.subarray(ctStart + ctLength, ctStart + ctLength + suite.tagLength);
  let plaintext: Buffer;
  if (suite.ccm && ccmFits(ctLength, aad.length)) {
    const opened = ccmOpen(keys, writeKeyAt(at, side), nonce, aad, ct, tag);
    if (opened === undefined) return undefined;
    plaintext = opened;
  } else {
    const opened = openOneShot(suite, writeKey(keys, at, side), aad, ct, tag, ctLength);
    if (opened === undefined) return undefined;
    plaintext = opened;
  }
  if (!cidRecord) return plaintext;
  let end = plaintext.length - 1;
  while (end >= 0 && plaintext[end] === 0) end--;
  if (end < 0) return undefined;
  rec.type = plaintext[end];
  return plaintext.subarray(0, end);
}

function openOneShot(
  suite: CipherSuite,
  key: Buffer,
  aad: Buffer,
  ct: Buffer,
  tag: Buffer,
  ctLength: number,
): Buffer | undefined {
  let plaintext: Buffer;
  try {
    if (suite.ccm) {
      const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: suite.tagLength });
      d.setAuthTag(tag);
      d.setAAD(aad, { plaintextLength: ctLength });
      plaintext = d.update(ct);
      d.final();
    } else {
      const d = createDecipheriv('aes-128-gcm', key, nonce);
      d.setAuthTag(tag);
      d.setAAD(aad);
      plaintext = d.update(ct);
      d.final();
    }
  } catch {
    return undefined;
  }
  return plaintext;
}
