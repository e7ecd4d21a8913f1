/**
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) in plain TypeScript, for the handshake's many short
 * inputs: a DTLS handshake runs about 14 HMACs over a few dozen bytes each, where node:crypto's per-call
 * cost (a native object, a key object, garbage) is several times the hashing. Here a key's inner and outer
 * pad states are computed once per key, a message of up to 55 bytes is one compression, and nothing is
 * allocated but the output. SHA-256 has no secret-dependent table lookups or branches, so this is as
 * constant-time as the native one. Bulk data should still go to node:crypto.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The message schedule as a rolling window of 16 words, shared: compression never re-enters. */
const W = new Int32Array(16);

/** Compresses the 64 bytes of `data` at `off` into the state `h`. */
function compress(h: Int32Array, data: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) {
    W[i] = (data[off] << 24) | (data[off + 1] << 16) | (data[off + 2] << 8) | data[off + 3];
  }
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let hh = h[7];
  for (let i = 0; i < 64; i++) {
    let w: number;
    if (i < 16) {
      w = W[i];
    } else {
      const w15 = W[(i - 15) & 15];
      const w2 = W[(i - 2) & 15];
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      w = W[i & 15] = (W[i & 15] + s0 + W[(i - 7) & 15] + s1) | 0;
    }
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (hh + s1 + (g ^ (e & (f ^ g))) + K[i] + w) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) | (c & (a | b)))) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + hh) | 0;
}

/** An incremental SHA-256. `digest` does not end it: more may be added and digested again. */
export class Sha256 {
  private readonly h = new Int32Array(8);
  private readonly buf = new Uint8Array(64);
  private fill = 0;
  private length = 0;

  constructor() {
    this.h.set(IV);
  }

  /**
   * Starts over from the chaining value at `state[at…at+7]`, with `length` bytes already hashed (a multiple
   * of 64).
   */
  resetTo(state: Int32Array, at: number, length: number): this {
    const h = this.h;
    for (let i = 0; i < 8; i++) h[i] = state[at + i];
    this.fill = 0;
    this.length = length;
    return this;
  }

  /** A copy that goes on independently. */
  copy(): Sha256 {
    const c = new Sha256();
    c.h.set(this.h);
    c.buf.set(this.buf);
    c.fill = this.fill;
    c.length = this.length;
    return c;
  }

  update(data: Uint8Array, start = 0, end = data.length): this {
    this.length += end - start;
    let fill = this.fill;
    if (fill > 0) {
      const buf = this.buf;
      const stop = Math.min(end, start + 64 - fill);
      while (start < stop) buf[fill++] = data[start++];
      if (fill < 64) {
        this.fill = fill;
        return this;
      }
      compress(this.h, this.buf, 0);
      fill = 0;
    }
    for (; end - start >= 64; start += 64) compress(this.h, data, start);
    const buf = this.buf;
    while (start < end) buf[fill++] = data[start++];
    this.fill = fill;
    return this;
  }

  /** Writes the digest of everything added so far into `out` at `off` (the hash can go on). */
  digestInto(out: Uint8Array, off: number): void {
    const h = scratchState;
    h.set(this.h);
    const block = scratchBlock;
    block.set(this.buf);
    let fill = this.fill;
    block[fill++] = 0x80;
    if (fill > 56) {
      block.fill(0, fill);
      compress(h, block, 0);
      fill = 0;
    }
    block.fill(0, fill, 56);
    const bits = this.length * 8;
    const high = Math.floor(bits / 0x100000000);
    block[56] = high >>> 24;
    block[57] = high >>> 16;
    block[58] = high >>> 8;
    block[59] = high;
    block[60] = bits >>> 24;
    block[61] = bits >>> 16;
    block[62] = bits >>> 8;
    block[63] = bits;
    compress(h, block, 0);
    for (let i = 0; i < 8; i++, off += 4) {
      const v = h[i];
      out[off] = v >>> 24;
      out[off + 1] = v >>> 16;
      out[off + 2] = v >>> 8;
      out[off + 3] = v;
    }
  }

  digest(): Buffer {
    const out = Buffer.allocUnsafe(32);
    this.digestInto(out, 0);
    return out;
  }
}

const scratchState = new Int32Array(8);
const scratchBlock = new Uint8Array(64);

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const h = new Sha256();
  for (const p of parts) h.update(p);
  return h.digest();
}

const padBlock = new Uint8Array(64);
const inner = new Sha256();
const outer = new Sha256();
const innerDigest = new Uint8Array(32);

/**
 * HMAC-SHA256 with one key: the key's pad states are computed once, so each MAC costs only the message's
 * blocks and one outer block.
 */
export class HmacSha256 {
  /** The chaining values after the key XOR ipad (0…7) and after the key XOR opad (8…15). */
  private readonly pads = new Int32Array(16);

  constructor(key: Uint8Array) {
    const k = padBlock;
    k.fill(0);
    if (key.length > 64) k.set(sha256(key));
    else k.set(key);
    const pad = scratchState;
    for (let i = 0; i < 64; i++) k[i] ^= 0x36;
    pad.set(IV);
    compress(pad, k, 0);
    this.pads.set(pad, 0);
    for (let i = 0; i < 64; i++) k[i] ^= 0x36 ^ 0x5c;
    pad.set(IV);
    compress(pad, k, 0);
    this.pads.set(pad, 8);
    // No copy of the key is left behind in the scratch block or the message schedule.
    k.fill(0);
    W.fill(0);
  }

  /** Starts a MAC: add the message with `update`, then `end` (one MAC at a time: the state is shared). */
  begin(): Sha256 {
    return inner.resetTo(this.pads, 0, 64);
  }

  /** Ends the MAC begun with `begin`, writing 32 bytes to `out` at `off`. */
  end(out: Uint8Array, off = 0): void {
    inner.digestInto(innerDigest, 0);
    outer.resetTo(this.pads, 8, 64).update(innerDigest).digestInto(out, off);
  }
}
