/**
 * RADIUS accounting packets (RFC 2866). The attributes are decoded by the `radius` codec library with its RFC
 * dictionaries and the 3GPP ones; the Request Authenticator is checked here, in constant time, with the
 * client's shared secret as bytes:
 *
 *   Request Authenticator = MD5(Code | Identifier | Length | 16 zero octets | Attributes | Secret)
 *
 * (the library compares the two digests as UTF-8 strings, which maps different bytes to the same text and so
 * accepts some wrong authenticators; and it takes the secret as a string only). The answer is an
 * Accounting-Response whose Response Authenticator is MD5(Code | Identifier | Length | Request Authenticator |
 * Attributes | Secret).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import radius from 'radius';
import { loadDictionaries } from './dictionary.js';

export const ACCOUNTING_REQUEST = 4;
export const ACCOUNTING_RESPONSE = 5;
const HEADER_BYTES = 20;
const AUTH_START = 4;
const AUTH_END = 20;
export const MAX_PACKET_BYTES = 4096;

export type AccountingStatus = 'start' | 'stop' | 'interim' | 'on' | 'off' | 'other';

/** What the gateway takes from an Accounting-Request. */
export interface AccountingRecord {
  identifier: number;
  status: AccountingStatus;
  framedIp?: string;
  userName?: string;
  /** Calling-Station-Id: the MSISDN on a 3GPP APN. */
  msisdn?: string;
  imsi?: string;
  imeisv?: string;
  sessionId?: string;
}

/** Why a packet was not taken (metric label `outcome`). */
export type RefusalReason = 'malformed' | 'not_accounting' | 'bad_authenticator';

export class AccountingRefusal extends Error {
  constructor(readonly reason: RefusalReason) {
    super(reason);
  }
}

/** Whether the packet's Request Authenticator was made with `secret`. Does not modify the packet. */
export function verifyRequestAuthenticator(packet: Buffer, secret: Buffer): boolean {
  if (packet.length < HEADER_BYTES) return false;
  const length = packet.readUInt16BE(2);
  if (length < HEADER_BYTES || length > packet.length) return false;
  const md5 = createHash('md5');
  md5.update(packet.subarray(0, AUTH_START));
  md5.update(Buffer.alloc(AUTH_END - AUTH_START));
  md5.update(packet.subarray(AUTH_END, length));
  md5.update(secret);
  return timingSafeEqual(md5.digest(), packet.subarray(AUTH_START, AUTH_END));
}

/** Writes an Accounting-Request with its authenticator (for tests and the load generator). */
export function signRequest(packet: Buffer, secret: Buffer): Buffer {
  const out = Buffer.from(packet);
  out.fill(0, AUTH_START, AUTH_END);
  createHash('md5').update(out).update(secret).digest().copy(out, AUTH_START);
  return out;
}

/** The Accounting-Response to a verified request (no attributes). */
export function accountingResponse(request: Buffer, secret: Buffer): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out[0] = ACCOUNTING_RESPONSE;
  out[1] = request[1];
  out.writeUInt16BE(HEADER_BYTES, 2);
  request.copy(out, AUTH_START, AUTH_START, AUTH_END);
  createHash('md5').update(out).update(secret).digest().copy(out, AUTH_START);
  return out;
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.replace(/\0+$/, '') || undefined;
  if (Buffer.isBuffer(v)) return v.toString('utf8').replace(/\0+$/, '') || undefined;
  return undefined;
}

const STATUS: Record<string, AccountingStatus> = {
  Start: 'start',
  Stop: 'stop',
  'Interim-Update': 'interim',
  'Accounting-On': 'on',
  'Accounting-Off': 'off',
};

/**
 * Checks and decodes an Accounting-Request. Throws an AccountingRefusal for anything else: a packet that is
 * not one, is malformed, or whose authenticator was not made with `secret`.
 */
export function readAccountingRequest(packet: Buffer, secret: Buffer): AccountingRecord {
  if (packet.length < HEADER_BYTES || packet.length > MAX_PACKET_BYTES)
    throw new AccountingRefusal('malformed');
  if (packet[0] !== ACCOUNTING_REQUEST) throw new AccountingRefusal('not_accounting');
  const length = packet.readUInt16BE(2);
  if (length < HEADER_BYTES || length > packet.length) throw new AccountingRefusal('malformed');
  if (!verifyRequestAuthenticator(packet, secret)) throw new AccountingRefusal('bad_authenticator');
  loadDictionaries();
  let decoded: radius.RadiusPacket;
  try {
    decoded = radius.decode_without_secret({ packet: packet.subarray(0, length) });
  } catch {
    throw new AccountingRefusal('malformed');
  }
  const a = decoded.attributes as Record<string, unknown>;
  const vsa = (a['Vendor-Specific'] ?? {}) as Record<string, unknown>;
  const framed = a['Framed-IP-Address'];
  return {
    identifier: decoded.identifier,
    status: STATUS[String(a['Acct-Status-Type'])] ?? 'other',
    framedIp: typeof framed === 'string' ? framed : undefined,
    userName: text(a['User-Name']),
    msisdn: digitsOf(text(a['Calling-Station-Id'])),
    imsi: digitsOf(text(vsa['3GPP-IMSI'])),
    imeisv: digitsOf(text(vsa['3GPP-IMEISV'])),
    sessionId: text(a['Acct-Session-Id']),
  };
}

/** The digits of an identity (a Calling-Station-Id may carry a `+`); undefined when there are none. */
function digitsOf(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const d = s.replace(/^\+/, '');
  return /^[0-9]{1,20}$/.test(d) ? d : undefined;
}

/** The Luhn check digit of the first 14 IMEI digits. */
export function luhnDigit(fourteen: string): string {
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    let d = fourteen.charCodeAt(i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** The 15-digit IMEI of an IMEISV (16 digits) or IMEI (14 or 15 digits). */
export function imeiOf(digits: string): string | undefined {
  if (digits.length < 14 || digits.length > 16) return undefined;
  const fourteen = digits.slice(0, 14);
  return fourteen + luhnDigit(fourteen);
}
