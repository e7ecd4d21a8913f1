/**
 * Untrusted CBOR in front of cbor-x. cbor-x is built for JavaScript object graphs: it gives some tag numbers
 * meanings of its own (shared references that make cycles, record definitions that outlive one decode,
 * "packed values") and refuses some well-formed input (indefinite-length strings, unassigned simple values).
 * `prepareCbor` checks that the bytes hold exactly one well-formed data item (RFC 8949 §5.3.1, Appendix C),
 * with bounded nesting and valid UTF-8 text, and returns bytes that keep to the subset cbor-x reads with its
 * standard meaning, following the JSON conversion advice of RFC 8949 §6.1:
 *
 * - tags are dropped and their content kept, except bignums (tags 2 and 3) and decimal fractions (tag 4),
 *   which stay numbers;
 * - byte strings under an expected-conversion tag (21 base64url, 22 base64, 23 base16, 108 lower-case base16)
 *   become text strings encoded that way;
 * - indefinite-length strings, and strings with an eight-byte length, become definite ones with the shortest
 *   length (cbor-x's native string extractor, used for longer payloads, reads neither);
 * - unassigned simple values become null.
 *
 * Most payloads need none of this: then the input itself is returned, after one pass that allocates nothing.
 */
import { isUtf8 } from 'node:buffer';
import { DecodeError } from './codec.js';

export const DEFAULT_MAX_DEPTH = 64;

const HINT_NONE = 0;

class Writer {
  buf: Buffer;
  len = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, size));
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  head(major: number, value: number): void {
    this.room(9);
    const b = this.buf;
    const mt = major << 5;
    if (value < 24) b[this.len++] = mt | value;
    else if (value < 0x100) {
      b[this.len++] = mt | 24;
      b[this.len++] = value;
    } else if (value < 0x10000) {
      b[this.len++] = mt | 25;
      b.writeUInt16BE(value, this.len);
      this.len += 2;
    } else if (value < 0x100000000) {
      b[this.len++] = mt | 26;
      b.writeUInt32BE(value, this.len);
      this.len += 4;
    } else {
      b[this.len++] = mt | 27;
      b.writeBigUInt64BE(BigInt(value), this.len);
      this.len += 8;
    }
  }

  bytes(src: Buffer, start: number, end: number): void {
    this.room(end - start);
    src.copy(this.buf, this.len, start, end);
    this.len += end - start;
  }

  byte(v: number): void {
    this.room(1);
    this.buf[this.len++] = v;
  }

  text(s: string): void {
    const n = Buffer.byteLength(s);
    this.head(3, n);
    this.room(n);
    this.len += this.buf.write(s, this.len);
  }
}

function fail(reason: string): never {
  throw new DecodeError(`CBOR: ${reason}`);
}

function encodeHint(hint: number, bytes: Buffer): string {
  if (hint === 21) return bytes.toString('base64url');
  if (hint === 22) return bytes.toString('base64');
  if (hint === 23) return bytes.toString('hex').toUpperCase();
  return bytes.toString('hex');
}

/** One walk over the input; with a writer it also emits the rewritten item. */
class Walker {
  pos = 0;
  /** Set when the input uses something that must be rewritten. */
  rewrite = false;
  /** Scratch for the argument of the last head read (lengths and values up to 2^53). */
  private arg = 0;

  constructor(
    private readonly src: Buffer,
    private readonly maxDepth: number,
    private readonly out: Writer | null,
  ) {}

  /** Reads an initial byte and its argument; returns the additional information (31: indefinite). */
  private head(): number {
    const src = this.src;
    if (this.pos >= src.length) fail('truncated data item');
    const ai = src[this.pos++] & 31;
    if (ai < 24) {
      this.arg = ai;
      return ai;
    }
    if (ai === 31) return ai;
    if (ai > 27) fail(`reserved additional information ${ai}`);
    const n = 1 << (ai - 24);
    if (this.pos + n > src.length) fail('truncated data item');
    if (n === 1) this.arg = src[this.pos];
    else if (n === 2) this.arg = src.readUInt16BE(this.pos);
    else if (n === 4) this.arg = src.readUInt32BE(this.pos);
    else {
      const hi = src.readUInt32BE(this.pos);
      // Lengths and tag numbers this large cannot be met by the data; the value only needs to be "too big".
      this.arg = hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + src.readUInt32BE(this.pos + 4);
    }
    this.pos += n;
    return ai;
  }

  private need(n: number): void {
    if (n > this.src.length - this.pos) fail('truncated data item');
  }

  /** Reads one string (definite or indefinite); returns its content as [start, end] ranges or a Buffer. */
  private stringContent(major: number, ai: number): Buffer {
    const src = this.src;
    if (ai !== 31) {
      this.need(this.arg);
      const s = src.subarray(this.pos, this.pos + this.arg);
      this.pos += this.arg;
      if (major === 3 && !isUtf8(s)) fail('text string is not valid UTF-8');
      return s;
    }
    this.rewrite = true;
    const parts: Buffer[] = [];
    for (;;) {
      if (this.pos >= src.length) fail('truncated indefinite-length string');
      if (src[this.pos] === 0xff) {
        this.pos++;
        break;
      }
      if (src[this.pos] >> 5 !== major) fail('indefinite-length string chunk of another major type');
      const cai = this.head();
      if (cai === 31) fail('nested indefinite-length string chunk');
      this.need(this.arg);
      parts.push(src.subarray(this.pos, this.pos + this.arg));
      this.pos += this.arg;
    }
    const all = Buffer.concat(parts);
    if (major === 3 && !isUtf8(all)) fail('text string is not valid UTF-8');
    return all;
  }

  /** True when the next item is `[integer, integer or bignum]` (RFC 8949 §3.4.4). */
  private isDecimalFraction(): boolean {
    const src = this.src;
    const p = this.pos;
    if (p + 2 >= src.length || src[p] !== 0x82 || src[p + 1] >> 5 > 1) return false;
    const probe = new Walker(src, 1, null);
    probe.pos = p + 1;
    probe.item(0, HINT_NONE);
    if (probe.pos >= src.length) return false;
    const b = src[probe.pos];
    if (b >> 5 <= 1) return (b & 31) !== 31;
    return (b === 0xc2 || b === 0xc3) && probe.pos + 1 < src.length && src[probe.pos + 1] >> 5 === 2;
  }

  item(depth: number, hint: number): void {
    const src = this.src;
    const out = this.out;
    const start = this.pos;
    if (start >= src.length) fail('truncated data item');
    const major = src[start] >> 5;
    const ai = this.head();
    switch (major) {
      case 0:
      case 1:
        if (ai === 31) fail('indefinite length on an integer');
        if (out) out.bytes(src, start, this.pos);
        return;
      case 2:
      case 3: {
        const headEnd = this.pos;
        const s = this.stringContent(major, ai);
        // An eight-byte length is rewritten too: cbor-x's native string extractor refuses it.
        if (ai === 27) this.rewrite = true;
        if (major === 2 && hint !== HINT_NONE) {
          this.rewrite = true;
          if (out) out.text(encodeHint(hint, s));
        } else if (out) {
          if (ai === 31 || ai === 27) {
            out.head(major, s.length);
            out.bytes(s, 0, s.length);
          } else out.bytes(src, start, headEnd + s.length);
        }
        return;
      }
      case 4:
      case 5: {
        if (depth >= this.maxDepth) fail(`nested deeper than ${this.maxDepth} levels`);
        const per = major === 4 ? 1 : 2;
        if (ai === 31) {
          if (out) out.byte((major << 5) | 31);
          for (;;) {
            if (this.pos >= src.length) fail('truncated indefinite-length container');
            if (src[this.pos] === 0xff) {
              this.pos++;
              if (out) out.byte(0xff);
              return;
            }
            this.item(depth + 1, hint);
            if (per === 2) this.item(depth + 1, hint);
          }
        }
        const n = this.arg;
        // Each item takes at least one byte: a count the rest of the input cannot hold is truncated.
        if (n > (src.length - this.pos) / per) fail('truncated container');
        if (out) out.bytes(src, start, this.pos);
        for (let i = 0; i < n * per; i++) this.item(depth + 1, hint);
        return;
      }
      case 6: {
        if (ai === 31) fail('indefinite length on a tag');
        if (depth >= this.maxDepth) fail(`nested deeper than ${this.maxDepth} levels`);
        const tag = this.arg;
        if ((tag === 2 || tag === 3) && this.pos < src.length && src[this.pos] >> 5 === 2) {
          // A bignum: kept, cbor-x reads it as a BigInt.
          const contentStart = this.pos;
          if (out) out.bytes(src, start, contentStart);
          this.item(depth + 1, HINT_NONE);
          return;
        }
        if (tag === 4 && this.isDecimalFraction()) {
          // A decimal fraction [exponent, mantissa]: kept, cbor-x reads it as a number (SenML uses them).
          if (out) out.bytes(src, start, this.pos);
          this.item(depth + 1, HINT_NONE);
          return;
        }
        this.rewrite = true;
        const next = tag === 21 || tag === 22 || tag === 23 || tag === 108 ? tag : hint;
        this.item(depth + 1, next);
        return;
      }
      default: {
        // Major type 7: simple values and floats.
        if (ai === 31) fail('break outside an indefinite-length item');
        if (ai >= 20 && ai <= 27 && ai !== 24) {
          if (out) out.bytes(src, start, this.pos);
          return;
        }
        if (ai === 24 && this.arg < 32) fail(`simple value ${this.arg} in two bytes`);
        // Unassigned simple value: JSON has no such thing; null is the substitute RFC 8949 §6.1 suggests.
        this.rewrite = true;
        if (out) out.byte(0xf6);
        return;
      }
    }
  }
}

/**
 * Checks `bytes` hold exactly one well-formed CBOR data item and returns bytes cbor-x decodes with standard
 * meaning (the input itself when nothing needs rewriting). Throws a DecodeError saying what is wrong.
 */
export function prepareCbor(bytes: Buffer, maxDepth = DEFAULT_MAX_DEPTH): Buffer {
  if (bytes.length === 0) fail('empty payload');
  const scan = new Walker(bytes, maxDepth, null);
  scan.item(0, HINT_NONE);
  if (scan.pos !== bytes.length) fail(`${bytes.length - scan.pos} bytes after the data item`);
  if (!scan.rewrite) return bytes;
  const out = new Writer(bytes.length + 16);
  new Walker(bytes, maxDepth, out).item(0, HINT_NONE);
  return out.buf.subarray(0, out.len);
}
