/**
 * Reassembly of incoming handshake messages (RFC 6347 §4.2.3): fragments may overlap, repeat, arrive out of
 * order or belong to the next few messages. A message larger than the cap, or fragments that disagree on a
 * message's type or length, are refused; at most WINDOW messages ahead are held.
 *
 * Memory follows the bytes that arrived, not the length a fragment claims: each run of received bytes is
 * held in a buffer of its own size, and runs that meet are joined. Every byte held is charged to a budget
 * shared by all handshakes (`dtls.maxReassemblyBytes`); a fragment that does not fit is dropped (the client
 * sends its flight again). The next expected message in one piece, the usual case, is a view of the
 * datagram and costs nothing: it is taken at once.
 */
import { EMPTY } from '../protocol/cursor.js';
import type { HandshakeHeader } from '../protocol/handshake.js';

/** How many message_seq values beyond the next expected one are buffered. */
export const WINDOW = 4;

/** Most separate runs of received bytes one message may have (a sender fragments in order; this is slack). */
export const MAX_RUNS = 16;

/** The bytes all reassembly buffers may hold together, shared by every handshake. */
export class ReassemblyBudget {
  /** Bytes held now. */
  used = 0;

  constructor(
    readonly limit: number,
    /** Called when a claim does not fit. */
    private readonly onFull: () => void = () => undefined,
  ) {}

  claim(bytes: number): boolean {
    if (this.used + bytes > this.limit) {
      this.onFull();
      return false;
    }
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}

interface Partial {
  readonly type: number;
  readonly length: number;
  /** Received byte ranges, sorted and disjoint: [start0, end0, start1, end1, ...]. */
  ranges: number[];
  /** The bytes of each range, in the same order. */
  runs: Buffer[];
  /** Bytes charged to the budget. */
  charged: number;
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
  /** Refused: too large, too far ahead, too scattered, or inconsistent with earlier fragments. */
  Refused,
  /** Dropped: the bytes of all reassembly buffers are at their cap. */
  Full,
}

export class Reassembler {
  /** message_seq of the next message to hand out. */
  next: number;
  private readonly partials = new Map<number, Partial>();

  constructor(
    first: number,
    private readonly maxMessageBytes: number,
    private readonly budget: ReassemblyBudget,
  ) {
    this.next = first;
  }

  /** Adds the fragment `h` whose bytes are in `buf`. */
  add(h: HandshakeHeader, buf: Buffer): FragmentResult {
    if (h.messageSeq < this.next) return FragmentResult.Old;
    if (h.messageSeq >= this.next + WINDOW || h.length > this.maxMessageBytes) return FragmentResult.Refused;
    let p = this.partials.get(h.messageSeq);
    if (!p) {
      if (h.fragmentOffset === 0 && h.fragmentLength === h.length && h.messageSeq === this.next) {
        // The usual case, the next message whole in one fragment: a view, taken at once, no copy.
        const body = buf.subarray(h.bodyOffset, h.bodyOffset + h.length);
        this.partials.set(h.messageSeq, {
          type: h.type,
          length: h.length,
          ranges: [0, h.length],
          runs: [body],
          charged: 0,
        });
        return FragmentResult.Accepted;
      }
      p = { type: h.type, length: h.length, ranges: [], runs: [], charged: 0 };
      this.partials.set(h.messageSeq, p);
    } else if (p.type !== h.type || p.length !== h.length) {
      return FragmentResult.Refused;
    }
    if (h.fragmentLength === 0) return FragmentResult.Accepted;
    return this.merge(p, buf, h.bodyOffset, h.fragmentOffset, h.fragmentOffset + h.fragmentLength);
  }

  /** Adds bytes [from, to) of the message (found at `at` in `buf`), joining the runs they meet. */
  private merge(p: Partial, buf: Buffer, at: number, from: number, to: number): FragmentResult {
    const ranges = p.ranges;
    // The runs [first, last) that overlap or touch [from, to).
    let first = 0;
    while (first < ranges.length && ranges[first + 1] < from) first += 2;
    let last = first;
    while (last < ranges.length && ranges[last] <= to) last += 2;
    if (last - first === 2 && ranges[first] <= from && ranges[first + 1] >= to)
      return FragmentResult.Accepted;
    if (first === last && ranges.length >= 2 * MAX_RUNS) return FragmentResult.Refused;
    const start = first < last ? Math.min(from, ranges[first]) : from;
    const end = first < last ? Math.max(to, ranges[last - 1]) : to;
    let kept = 0;
    for (let i = first; i < last; i += 2) kept += ranges[i + 1] - ranges[i];
    if (!this.budget.claim(end - start - kept)) return FragmentResult.Full;
    const run = Buffer.allocUnsafe(end - start);
    buf.copy(run, from - start, at, at + (to - from));
    // Bytes already held win over a repeat of them (a complete view is never written to).
    for (let i = first; i < last; i += 2) p.runs[i >> 1].copy(run, ranges[i] - start);
    p.charged += end - start - kept;
    ranges.splice(first, last - first, start, end);
    p.runs.splice(first >> 1, (last - first) >> 1, run);
    return FragmentResult.Accepted;
  }

  /** The next message if it is complete (advancing `next`), else undefined. */
  take(): HandshakeMessage | undefined {
    const p = this.partials.get(this.next);
    if (!p) return undefined;
    const complete =
      p.length === 0 || (p.ranges.length === 2 && p.ranges[0] === 0 && p.ranges[1] === p.length);
    if (!complete) return undefined;
    this.partials.delete(this.next);
    this.budget.release(p.charged);
    return { type: p.type, messageSeq: this.next++, body: p.length === 0 ? EMPTY : p.runs[0] };
  }

  /** Drops every partial message and gives its bytes back to the budget (the handshake ended). */
  clear(): void {
    for (const p of this.partials.values()) this.budget.release(p.charged);
    this.partials.clear();
  }
}
