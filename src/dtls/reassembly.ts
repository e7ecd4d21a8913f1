/**
 * Reassembly of incoming handshake messages (RFC 6347 §4.2.3): fragments may overlap, repeat, arrive out of
 * order or belong to the next few messages. A message larger than the cap, or fragments that disagree on a
 * message's type or length, are refused; at most WINDOW messages ahead are held.
 */
import type { HandshakeHeader } from './handshake.js';

/** How many message_seq values beyond the next expected one are buffered. */
export const WINDOW = 4;

interface Partial {
  readonly type: number;
  readonly body: Buffer;
  /** Received byte ranges, sorted and disjoint: [start0, end0, start1, end1, ...]. */
  ranges: number[];
}

export interface HandshakeMessage {
  readonly type: number;
  readonly messageSeq: number;
  readonly body: Buffer;
}

export const enum FragmentResult {
  /** Buffered (or a duplicate of bytes already held). */
  Accepted,
  /** A message before the next expected one: the peer is retransmitting an earlier flight. */
  Old,
  /** Refused: too large, too far ahead, or inconsistent with earlier fragments. */
  Refused,
}

export class Reassembler {
  /** message_seq of the next message to hand out. */
  next: number;
  private readonly partials = new Map<number, Partial>();

  constructor(
    first: number,
    private readonly maxMessageBytes: number,
  ) {
    this.next = first;
  }

  /** Adds the fragment `h` whose bytes are in `buf`. */
  add(h: HandshakeHeader, buf: Buffer): FragmentResult {
    if (h.messageSeq < this.next) return FragmentResult.Old;
    if (h.messageSeq >= this.next + WINDOW || h.length > this.maxMessageBytes) return FragmentResult.Refused;
    let p = this.partials.get(h.messageSeq);
    if (!p) {
      if (h.fragmentOffset === 0 && h.fragmentLength === h.length) {
        // The usual case, a whole message in one fragment: held as a view, no copy.
        const body = buf.subarray(h.bodyOffset, h.bodyOffset + h.length);
        this.partials.set(h.messageSeq, { type: h.type, body, ranges: [0, h.length] });
        return FragmentResult.Accepted;
      }
      p = { type: h.type, body: Buffer.alloc(h.length), ranges: [] };
      this.partials.set(h.messageSeq, p);
    } else if (p.type !== h.type || p.body.length !== h.length) {
      return FragmentResult.Refused;
    } else if (p.ranges.length === 2 && p.ranges[0] === 0 && p.ranges[1] === p.body.length) {
      // Already complete: a repeated fragment adds nothing (and the body may be a view not to write to).
      return FragmentResult.Accepted;
    }
    if (h.fragmentLength === 0 && h.length !== 0) return FragmentResult.Accepted;
    buf.copy(p.body, h.fragmentOffset, h.bodyOffset, h.bodyOffset + h.fragmentLength);
    p.ranges = mergeRange(p.ranges, h.fragmentOffset, h.fragmentOffset + h.fragmentLength);
    return FragmentResult.Accepted;
  }

  /** The next message if it is complete (advancing `next`), else undefined. */
  take(): HandshakeMessage | undefined {
    const p = this.partials.get(this.next);
    if (!p) return undefined;
    const complete =
      p.body.length === 0 || (p.ranges.length === 2 && p.ranges[0] === 0 && p.ranges[1] === p.body.length);
    if (!complete) return undefined;
    this.partials.delete(this.next);
    return { type: p.type, messageSeq: this.next++, body: p.body };
  }
}

/** Inserts [start, end) into sorted disjoint ranges, merging neighbours. */
export function mergeRange(ranges: number[], start: number, end: number): number[] {
  const out: number[] = [];
  let s = start;
  let e = end;
  let placed = false;
  for (let i = 0; i < ranges.length; i += 2) {
    const rs = ranges[i];
    const re = ranges[i + 1];
    if (re < s) out.push(rs, re);
    else if (rs > e) {
      if (!placed) {
        out.push(s, e);
        placed = true;
      }
      out.push(rs, re);
    } else {
      s = Math.min(s, rs);
      e = Math.max(e, re);
    }
  }
  if (!placed) out.push(s, e);
  return out;
}
