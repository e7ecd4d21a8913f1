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
    const out: Buffer[] = [];
    for (const p of this.parts) {
      if (Buffer.isBuffer(p)) {
        out.push(p);
        continue;
      }
      switch (p) {
        case 'counter':
          out.push(uint(f.counter, f.counterBytes));
          break;
        case 'counter8':
          out.push(uint(f.counter, 1));
          break;
        case 'counter16':
          out.push(uint(f.counter, 2));
          break;
        case 'counter32':
          out.push(uint(f.counter, 4));
          break;
        case 'tag':
          out.push(f.tag ?? ZERO_TAG);
          break;
        case 'length': {
          const n = f.downlink?.length ?? 0;
          if (n > 255) return undefined;
          out.push(Buffer.of(n));
          break;
        }
        case 'downlink':
          if (f.downlink) out.push(f.downlink);
          break;
      }
    }
    return Buffer.concat(out);
  }
}

function uint(v: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  if (bytes === 1) b[0] = v & 0xff;
  else if (bytes === 2) b.writeUInt16BE(v & 0xffff);
  else if (bytes === 4) b.writeUInt32BE(v >>> 0);
  return b;
}
