/**
 * The fixed fields of a raw UDP frame, as `udp.frame` places them: a device id (BCD, swapped BCD, ASCII digits
 * or hex), a big-endian frame counter, and where the payload for the device codec starts.
 *
 *   offset 0        8       10
 *          | IMEI (BCD) | fcnt | payload … |
 */
import type { UdpConfig } from '../config/udp.js';

export type FrameLayout = UdpConfig['frame'];

/**
 * Digits of BCD bytes; `swapped` reads the low nibble first. Stops at an F filler nibble, after which every
 * nibble must be F too (so each id has one encoding); undefined if not BCD.
 */
export function bcdDigits(b: Buffer, swapped: boolean): string | undefined {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const first = swapped ? b[i] & 0x0f : b[i] >> 4;
    const second = swapped ? b[i] >> 4 : b[i] & 0x0f;
    if (first === 0x0f) return s.length && allFiller(b, i) ? s : undefined;
    if (first > 9) return undefined;
    s += String.fromCharCode(48 + first);
    if (second === 0x0f) return i === b.length - 1 || allFiller(b, i + 1) ? s : undefined;
    if (second > 9) return undefined;
    s += String.fromCharCode(48 + second);
  }
  return s;
}

function allFiller(b: Buffer, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0xff) return false;
  return true;
}

/** Writes digits as BCD bytes (high nibble first, or low first when `swapped`), F-filled to `length` bytes. */
export function toBcd(digits: string, length: number, swapped = false): Buffer {
  const b = Buffer.alloc(length, 0xff);
  for (let i = 0; i < digits.length && i < length * 2; i++) {
    const d = digits.charCodeAt(i) - 48;
    const byte = i >> 1;
    const high = (i & 1) === 0 ? !swapped : swapped;
    b[byte] = high ? (d << 4) | (b[byte] & 0x0f) : (b[byte] & 0xf0) | d;
  }
  return b;
}

/** The device id the frame carries, or undefined when the datagram is too short or the field is not valid. */
export function frameId(datagram: Buffer, layout: FrameLayout): string | undefined {
  const id = layout.id;
  if (id === undefined || datagram.length < id.offset + id.length) return undefined;
  const field = datagram.subarray(id.offset, id.offset + id.length);
  switch (id.encoding) {
    case 'bcd':
      return bcdDigits(field, false);
    case 'bcd-swapped':
      return bcdDigits(field, true);
    case 'hex':
      return field.toString('hex');
    case 'ascii': {
      let end = field.length;
      while (end > 0 && (field[end - 1] === 0 || field[end - 1] === 0x20)) end--;
      const s = field.toString('latin1', 0, end);
      return s.length > 0 && /^[\x21-\x7e]+$/.test(s) ? s : undefined;
    }
  }
}

/** The frame counter the frame carries; undefined without a `frame.counter` or when the datagram is too short. */
export function frameCounter(datagram: Buffer, layout: FrameLayout): number | undefined {
  const c = layout.counter;
  if (c === undefined || datagram.length < c.offset + c.bytes) return undefined;
  return c.bytes === 2 ? datagram.readUInt16BE(c.offset) : datagram.readUInt32BE(c.offset);
}

/** Where the payload starts: `payloadOffset`, else the end of the id and counter fields. */
export function payloadOffset(layout: FrameLayout): number {
  if (layout.payloadOffset !== undefined) return layout.payloadOffset;
  let end = 0;
  if (layout.id) end = Math.max(end, layout.id.offset + layout.id.length);
  if (layout.counter) end = Math.max(end, layout.counter.offset + layout.counter.bytes);
  return end;
}
