/**
 * RFC 7252 §3 message codec.
 *
 * Parsing keeps the received datagram and records option offsets into it instead of slicing a Buffer per
 * option: the hot path reads the few options it needs straight from the datagram.
 */
import { COAP_VERSION, MessageType } from './constants.js';

const PAYLOAD_MARKER = 0xff;

/** Why a datagram is not a valid CoAP message. */
export class FormatError {
  constructor(
    readonly reason: string,
    /** Message type when the 4-byte header was readable, else -1 (then nothing can be answered). */
    readonly type: number,
    readonly messageId: number,
    /** True for a message that must be silently ignored (unknown version, RFC 7252 §3). */
    readonly silent: boolean,
  ) {}
}

/** A parsed CoAP message. Option values are ranges of `data`. */
export class CoapMessage {
  /** Option numbers in order of appearance (non-decreasing). */
  readonly optNumbers: number[] = [];
  readonly optStarts: number[] = [];
  readonly optEnds: number[] = [];
  payloadStart: number;

  constructor(
    readonly data: Buffer,
    readonly type: MessageType,
    readonly code: number,
    readonly messageId: number,
    readonly tokenLength: number,
  ) {
    this.payloadStart = data.length;
  }

  get token(): Buffer {
    return this.data.subarray(4, 4 + this.tokenLength);
  }

  get payload(): Buffer {
    return this.data.subarray(this.payloadStart);
  }

  get payloadLength(): number {
    return this.data.length - this.payloadStart;
  }

  get isEmpty(): boolean {
    return this.code === 0;
  }

  get isRequest(): boolean {
    return this.code >= 1 && this.code <= 31;
  }

  get isResponse(): boolean {
    return this.code >= 64;
  }

  /** Index of the first instance of an option, or -1. */
  indexOf(option: number): number {
    const nums = this.optNumbers;
    for (let i = 0; i < nums.length; i++) {
      const n = nums[i];
      if (n === option) return i;
      if (n > option) return -1;
    }
    return -1;
  }

  has(option: number): boolean {
    return this.indexOf(option) >= 0;
  }

  /** Value of the first instance of an option, as a new Buffer view. */
  opaque(option: number): Buffer | undefined {
    const i = this.indexOf(option);
    return i < 0 ? undefined : this.data.subarray(this.optStarts[i], this.optEnds[i]);
  }

  /** All values of a repeatable opaque option (e.g. ETag in a validation request). */
  opaques(option: number): Buffer[] {
    const out: Buffer[] = [];
    const nums = this.optNumbers;
    for (let i = 0; i < nums.length; i++) {
      const n = nums[i];
      if (n === option) out.push(this.data.subarray(this.optStarts[i], this.optEnds[i]));
      else if (n > option) break;
    }
    return out;
  }

  /** Value of a uint option (RFC 7252 §3.2), or undefined when absent. */
  uint(option: number): number | undefined {
    const i = this.indexOf(option);
    if (i < 0) return undefined;
    return readUint(this.data, this.optStarts[i], this.optEnds[i]);
  }

  /** All values of a repeatable string option. */
  strings(option: number): string[] {
    const out: string[] = [];
    const nums = this.optNumbers;
    for (let i = 0; i < nums.length; i++) {
      const n = nums[i];
      if (n === option) out.push(this.data.toString('utf8', this.optStarts[i], this.optEnds[i]));
      else if (n > option) break;
    }
    return out;
  }

  /** Values of a repeatable string option joined with a separator ("" when absent). */
  joined(option: number, separator: string): string {
    let out = '';
    let first = true;
    const nums = this.optNumbers;
    for (let i = 0; i < nums.length; i++) {
      const n = nums[i];
      if (n === option) {
        const s = this.data.toString('utf8', this.optStarts[i], this.optEnds[i]);
        out = first ? s : out + separator + s;
        first = false;
      } else if (n > option) break;
    }
    return out;
  }

  /** Number of instances of an option. */
  count(option: number): number {
    let c = 0;
    for (const n of this.optNumbers) {
      if (n === option) c++;
      else if (n > option) break;
    }
    return c;
  }
}

export function readUint(data: Buffer, start: number, end: number): number {
  let v = 0;
  for (let p = start; p < end; p++) v = v * 256 + data[p];
  return v;
}

/**
 * Parses a datagram. Returns the message, or a FormatError that says whether (and how) the sender can be
 * answered. Never throws.
 */
export function parseMessage(data: Buffer): CoapMessage | FormatError {
  const len = data.length;
  if (len < 4) return new FormatError('shorter than the 4-byte header', -1, -1, true);
  const b0 = data[0];
  const type = (b0 >> 4) & 0x03;
  const messageId = (data[2] << 8) | data[3];
  if (b0 >> 6 !== COAP_VERSION) return new FormatError('unknown version', type, messageId, true);
  const tkl = b0 & 0x0f;
  const code = data[1];
  if (tkl > 8) return new FormatError('token length 9-15 is reserved', type, messageId, false);
  const cls = code >> 5;
  if (cls === 1 || cls === 6 || cls === 7)
    return new FormatError('reserved code class', type, messageId, false);
  if (code === 0) {
    // Empty message: exactly 4 bytes, token length 0 (RFC 7252 §3, §4.1).
    if (len !== 4)
      return new FormatError('empty message with content after the header', type, messageId, false);
    if (tkl !== 0) return new FormatError('empty message with a token length', type, messageId, false);
    return new CoapMessage(data, type, code, messageId, 0);
  }
  if (len < 4 + tkl) return new FormatError('truncated token', type, messageId, false);
  const msg = new CoapMessage(data, type, code, messageId, tkl);
  let pos = 4 + tkl;
  let number = 0;
  while (pos < len) {
    const byte = data[pos];
    if (byte === PAYLOAD_MARKER) {
      if (pos + 1 >= len) return new FormatError('payload marker without payload', type, messageId, false);
      msg.payloadStart = pos + 1;
      return msg;
    }
    pos++;
    let delta = byte >> 4;
    let length = byte & 0x0f;
    if (delta === 13) {
      if (pos >= len) return new FormatError('truncated option delta', type, messageId, false);
      delta = data[pos++] + 13;
    } else if (delta === 14) {
      if (pos + 1 >= len) return new FormatError('truncated option delta', type, messageId, false);
      delta = ((data[pos] << 8) | data[pos + 1]) + 269;
      pos += 2;
    } else if (delta === 15) {
      return new FormatError('option delta nibble 15 is reserved', type, messageId, false);
    }
    if (length === 13) {
      if (pos >= len) return new FormatError('truncated option length', type, messageId, false);
      length = data[pos++] + 13;
    } else if (length === 14) {
      if (pos + 1 >= len) return new FormatError('truncated option length', type, messageId, false);
      length = ((data[pos] << 8) | data[pos + 1]) + 269;
      pos += 2;
    } else if (length === 15) {
      return new FormatError('option length nibble 15 is reserved', type, messageId, false);
    }
    number += delta;
    if (number > 0xffff) return new FormatError('option number over 65535', type, messageId, false);
    if (pos + length > len) return new FormatError('option value past the end', type, messageId, false);
    msg.optNumbers.push(number);
    msg.optStarts.push(pos);
    msg.optEnds.push(pos + length);
    pos += length;
  }
  return msg;
}

/** An option to encode: its number and value (Buffer, string, or uint). */
export type OptionValue = Buffer | string | number;
export type OptionEntry = readonly [number, OptionValue];

export interface OutgoingMessage {
  type: MessageType;
  code: number;
  messageId: number;
  token?: Buffer;
  /** Options in any order; the encoder sorts them by number (stable for repeated options). */
  options?: readonly OptionEntry[];
  payload?: Buffer;
}

export function uintLength(v: number): number {
  if (v === 0) return 0;
  if (v < 0x100) return 1;
  if (v < 0x10000) return 2;
  if (v < 0x1000000) return 3;
  return 4;
}

function valueLength(v: OptionValue): number {
  if (typeof v === 'number') return uintLength(v);
  if (typeof v === 'string') return Buffer.byteLength(v);
  return v.length;
}

function extLength(n: number): number {
  return n < 13 ? 0 : n < 269 ? 1 : 2;
}

function byOptionNumber(a: OptionEntry, b: OptionEntry): number {
  return a[0] - b[0];
}

/** Encodes a message into one new Buffer of exactly its size. */
export function encodeMessage(m: OutgoingMessage): Buffer {
  const tkl = m.token ? m.token.length : 0;
  if (tkl > 8) throw new RangeError('token longer than 8 bytes');
  let options = m.options;
  if (options && options.length > 1) {
    for (let i = 1; i < options.length; i++) {
      if (options[i][0] < options[i - 1][0]) {
        options = [...options].sort(byOptionNumber);
        break;
      }
    }
  }
  let size = 4 + tkl;
  let prev = 0;
  if (options) {
    for (const [num, val] of options) {
      const vl = valueLength(val);
      size += 1 + extLength(num - prev) + extLength(vl) + vl;
      prev = num;
    }
  }
  const payload = m.payload;
  if (payload && payload.length > 0) size += 1 + payload.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = (COAP_VERSION << 6) | ((m.type & 3) << 4) | tkl;
  out[1] = m.code;
  out[2] = (m.messageId >> 8) & 0xff;
  out[3] = m.messageId & 0xff;
  let pos = 4;
  if (m.token && tkl > 0) pos += m.token.copy(out, pos);
  prev = 0;
  if (options) {
    for (const [num, val] of options) {
      const delta = num - prev;
      prev = num;
      const vl = valueLength(val);
      const head = pos++;
      let nib: number;
      if (delta < 13) nib = delta << 4;
      else if (delta < 269) {
        nib = 13 << 4;
        out[pos++] = delta - 13;
      } else {
        nib = 14 << 4;
        out.writeUInt16BE(delta - 269, pos);
        pos += 2;
      }
      if (vl < 13) nib |= vl;
      else if (vl < 269) {
        nib |= 13;
        out[pos++] = vl - 13;
      } else {
        nib |= 14;
        out.writeUInt16BE(vl - 269, pos);
        pos += 2;
      }
      out[head] = nib;
      if (typeof val === 'number') {
        for (let i = vl - 1; i >= 0; i--) out[pos + vl - 1 - i] = Math.floor(val / 256 ** i) & 0xff;
        pos += vl;
      } else if (typeof val === 'string') {
        pos += out.write(val, pos, 'utf8');
      } else {
        pos += val.copy(out, pos);
      }
    }
  }
  if (payload && payload.length > 0) {
    out[pos++] = PAYLOAD_MARKER;
    payload.copy(out, pos);
  }
  return out;
}

/** An empty ACK or RST for a message ID (RFC 7252 §4.2, §4.3). */
export function encodeEmpty(
  type: MessageType.ACK | MessageType.RST | MessageType.CON,
  messageId: number,
): Buffer {
  const out = Buffer.allocUnsafe(4);
  out[0] = (COAP_VERSION << 6) | (type << 4);
  out[1] = 0;
  out[2] = (messageId >> 8) & 0xff;
  out[3] = messageId & 0xff;
  return out;
}
