/**
 * The envelope's `messageId`, derived from what a retransmission repeats, so a CON uplink retransmitted to
 * another replica (after its flow moved, or after the replica that had it crashed) is published with the
 * same id and consumers can deduplicate it — without a store round trip per uplink.
 *
 * The id is SHA-256 over: the peer key (the DTLS session, which replicas share, or the NoSec source
 * address), the device id, the method, the path, the CoAP Message ID, the token and the body; shown as a
 * UUID (version 8, RFC 9562). Each field is length-prefixed, so no two different inputs run together.
 * A retransmission repeats every one of these; a new uplink changes at least the Message ID, which a
 * device must not reuse toward the same endpoint within EXCHANGE_LIFETIME (RFC 7252 §4.4).
 *
 * `exchangeKey` names the CoAP exchange that carried a message's last block the same way (the last block's
 * payload instead of the whole body): what the dedup store records for block-wise uploads.
 */
import { createHash, hash } from 'node:crypto';

/** First byte hashed: what is derived, and its scheme (bumped if a derivation ever changes). */
const MESSAGE_ID_V1 = 1;
const EXCHANGE_KEY_V1 = 2;

const scratch = Buffer.allocUnsafe(2048);

export interface UplinkIdentity {
  /** `Peer.key`: the DTLS session or the NoSec address. */
  peerKey: string;
  deviceId: string;
  method: number;
  path: string;
  /** CoAP Message ID of the request (the last block's, for a Block1 upload). */
  coapMessageId: number;
  token: Buffer;
}

/** Writes `s` as UTF-8 after a 2-byte length at `o`; returns the end. */
function writeString(out: Buffer, o: number, s: string): number {
  const n = out.write(s, o + 2, 'utf8');
  out[o] = n >> 8;
  out[o + 1] = n & 0xff;
  return o + 2 + n;
}

/** Writes the fields (all but the body) into `out` from 0 (it must hold `fieldBytes(u)`); returns the end. */
function writeFields(out: Buffer, domain: number, u: UplinkIdentity, bodyLength: number): number {
  out[0] = domain;
  let o = writeString(out, 1, u.peerKey);
  o = writeString(out, o, u.deviceId);
  o = writeString(out, o, u.path);
  out[o++] = u.method & 0xff;
  out[o++] = (u.coapMessageId >> 8) & 0xff;
  out[o++] = u.coapMessageId & 0xff;
  out[o++] = u.token.length;
  o += u.token.copy(out, o);
  return out.writeUInt32BE(bodyLength, o);
}

/** An upper bound of the bytes `writeFields` writes. */
function fieldBytes(u: UplinkIdentity): number {
  return 12 + 3 * (u.peerKey.length + u.deviceId.length + u.path.length) + u.token.length;
}

function digestHex(domain: number, u: UplinkIdentity, body: Buffer): string {
  const fields = fieldBytes(u);
  if (fields + body.length <= scratch.length) {
    const o = writeFields(scratch, domain, u, body.length);
    const end = o + body.copy(scratch, o);
    return hash('sha256', scratch.subarray(0, end), 'hex');
  }
  const head = Buffer.allocUnsafe(fields);
  const o = writeFields(head, domain, u, body.length);
  return createHash('sha256').update(head.subarray(0, o)).update(body).digest('hex');
}

/** The envelope `messageId` of an uplink: the same for every transmission of the same request. */
export function uplinkMessageId(u: UplinkIdentity, body: Buffer): string {
  const d = digestHex(MESSAGE_ID_V1, u, body);
  // Version 8 (custom), variant 10xx.
  const variant = ((parseInt(d[16], 16) & 0x3) | 0x8).toString(16);
  return `${d.slice(0, 8)}-${d.slice(8, 12)}-8${d.slice(13, 16)}-${variant}${d.slice(17, 20)}-${d.slice(20, 32)}`;
}

/** Names the CoAP exchange that carried an uplink's last block (its payload is `lastPayload`). */
export function exchangeKey(u: UplinkIdentity, lastPayload: Buffer): string {
  return digestHex(EXCHANGE_KEY_V1, u, lastPayload).slice(0, 32);
}
