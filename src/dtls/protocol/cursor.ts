/**
 * A bounds-checked reader over part of a Buffer. A read past the end returns 0 and clears `ok` instead of
 * throwing, so a parser reads a whole structure and checks `ok` once: no exceptions on garbage input.
 */
export class Cursor {
  ok = true;

  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  private take(n: number): number {
    const at = this.pos;
    if (!this.ok || n > this.end - at) {
      this.ok = false;
      this.pos = this.end;
      return -1;
    }
    this.pos = at + n;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.buf[at];
  }

  u16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.buf.readUInt16BE(at);
  }

  u24(): number {
    const at = this.take(3);
    return at < 0 ? 0 : this.buf.readUIntBE(at, 3);
  }

  /** A view of the next `n` bytes (empty when past the end). */
  view(n: number): Buffer {
    const at = this.take(n);
    return at < 0 ? EMPTY : this.buf.subarray(at, at + n);
  }

  /** A copy of the next `n` bytes, for values kept beyond the datagram's life. */
  copy(n: number): Buffer {
    const at = this.take(n);
    return at < 0 ? EMPTY : Buffer.from(this.buf.subarray(at, at + n));
  }

  /** A view of a vector with a one-byte length. */
  vec8(): Buffer {
    return this.view(this.u8());
  }

  /** A view of a vector with a two-byte length. */
  vec16(): Buffer {
    return this.view(this.u16());
  }
}

export const EMPTY = Buffer.alloc(0);
