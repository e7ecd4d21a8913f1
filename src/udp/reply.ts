/**
 * Reply frames (`udp.reply.ack`, `udp.reply.downlink`): templates of space-separated tokens, each hex bytes or a
 * field:
 *
 *   counter     the uplink's frame counter in its own width (2 or 4 bytes, big-endian; 0 bytes without one)
 *   counter8 / counter16 / counter32   the counter's low 8, 16 or 32 bits
 *   tag         the 8-byte downlink tag (zeros when the reply carries no downlink)
 *   length      one byte: the downlink's length (a downlink over 255 bytes does not fit this field)
 *   downlink    the downlink bytes (the device codec's encodeDownlink)
 *
 * e.g. `06 counter16` (ACK and the counter echoed) or `a1 counter16 tag length downlink`.
 */
type Part = Buffer | 'counter' | 'counter8' | 'counter16' | 'counter32' | 'tag' | 'length' | 'downlink';

export interface ReplyFields {
  /** Frame counter of the uplink and its width in bytes (0: no counter). */
  counter: number;
  counterBytes: 0 | 2 | 4;
  tag?: Buffer;
  downlink?: Buffer;
}

/** A reply without a downlink carries a tag of zeros, as long as a downlink tag (8 bytes). */
const ZERO_TAG = Buffer.alloc(8);

export class ReplyTemplate {
  private readonly parts: Part[];

  constructor(readonly template: string) {
    this.parts = template
      .trim()
      .split(/\s+/)
      .filter((t) => t !== '')
      .map((t) => (/^[0-9a-fA-F]+$/.test(t) ? Buffer.from(t, 'hex') : (t as Part)));
  }

  get empty(): boolean {
    return this.parts.length === 0;
  }

  /** Whether the template places the downlink bytes. */
  get carriesDownlink(): boolean {
    return this.parts.includes('downlink');
  }

  /** The frame, or undefined when a field cannot hold its value (a downlink over 255 bytes for `length`). */
  render(f: ReplyFields): Buffer | undefined {
    const downlink = f.downlink;
    if (downlink !== undefined && downlink.length > 255 && this.parts.includes('length')) return undefined;
    let size = 0;
    for (const p of this.parts) size += Buffer.isBuffer(p) ? p.length : this.width(p, f);
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const p of this.parts) {
      if (Buffer.isBuffer(p)) {
        at += p.copy(out, at);
        continue;
      }
      switch (p) {
        case 'counter':
          at = uint(out, at, f.counter, f.counterBytes);
          break;
        case 'counter8':
          at = uint(out, at, f.counter, 1);
          break;
        case 'counter16':
          at = uint(out, at, f.counter, 2);
          break;
        case 'counter32':
          at = uint(out, at, f.counter, 4);
          break;
        case 'tag':
          at += (f.tag ?? ZERO_TAG).copy(out, at);
          break;
        case 'length':
          out[at++] = downlink?.length ?? 0;
          break;
        case 'downlink':
          if (downlink) at += downlink.copy(out, at);
          break;
      }
    }
    return out;
  }

  private width(p: Exclude<Part, Buffer>, f: ReplyFields): number {
    switch (p) {
      case 'counter':
        return f.counterBytes;
      case 'counter8':
        return 1;
      case 'counter16':
        return 2;
      case 'counter32':
        return 4;
      case 'tag':
        return (f.tag ?? ZERO_TAG).length;
      case 'length':
        return 1;
      case 'downlink':
        return f.downlink?.length ?? 0;
    }
  }
}

/** Writes the low `bytes` bytes of `v` big-endian at `at`; returns the next offset. */
function uint(out: Buffer, at: number, v: number, bytes: number): number {
  if (bytes === 1) out[at] = v & 0xff;
  else if (bytes === 2) out.writeUInt16BE(v & 0xffff, at);
  else if (bytes === 4) out.writeUInt32BE(v >>> 0, at);
  return at + bytes;
}
