/**
 * The 64-record anti-replay window of RFC 6347 §4.1.2.6, as plain numbers on the object that owns it (no
 * allocation): `top` is the highest sequence number accepted, `lo`/`hi` the bitmap of the 64 numbers up to
 * it (bit 0 of `lo` is `top` itself), kept as signed 32-bit integers so V8 stores them unboxed. A record is checked before it is decrypted and marked only after it
 * authenticates.
 */
export interface ReplayState {
  /** Highest sequence number accepted so far; -1 before the first. */
  top: number;
  lo: number;
  hi: number;
}

export const WINDOW = 64;

/** Whether `seq` is new: above the window, or inside it and not yet seen. */
export function replayFresh(w: ReplayState, seq: number): boolean {
  if (seq > w.top) return true;
  const back = w.top - seq;
  if (back >= WINDOW) return false;
  return back < 32 ? (w.lo & (1 << back)) === 0 : (w.hi & (1 << (back - 32))) === 0;
}

/**
 * Marks `seq` as seen (after the record authenticated). Returns true when it moved the window up, i.e. the
 * record is newer than any seen before (the condition for moving a peer's address, RFC 9146 §6).
 */
export function replayMark(w: ReplayState, seq: number): boolean {
  if (seq > w.top) {
    const shift = w.top < 0 ? WINDOW : seq - w.top;
    if (shift >= WINDOW) {
      w.lo = 1;
      w.hi = 0;
    } else if (shift >= 32) {
      w.hi = shift === 32 ? w.lo : w.lo << (shift - 32);
      w.lo = 1;
    } else {
      w.hi = (w.hi << shift) | (w.lo >>> (32 - shift));
      w.lo = (w.lo << shift) | 1;
    }
    w.top = seq;
    return true;
  }
  const back = w.top - seq;
  if (back < 32) w.lo |= 1 << back;
  else w.hi |= 1 << (back - 32);
  return false;
}
