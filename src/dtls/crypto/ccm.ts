/**
 * AES-CCM (RFC 3610) for 12-byte nonces, computed with two AES contexts that live as long as the key, instead
 * of a new `aes-128-ccm` cipher object per record (creating one costs Node more than the cipher work itself).
 *
 * - CBC-MAC: one `aes-128-cbc` context (IV 0). A CBC context carries its last ciphertext block into the next
 *   call; XOR-ing that block into the first block of the next message makes the context start that message
 *   from IV 0 again, so one context computes the CBC-MAC of every message of the key with one call each.
 * - CTR: one `aes-128-ecb` context encrypts the counter blocks A0…An in one call; A0's block masks the tag.
 *
 * Results are identical to Node's `aes-128-ccm` (the tests check it against random vectors and RFC 3610's).
 * The tag check does not stop at the first differing byte.
 */
import { createCipheriv, type Cipher } from 'node:crypto';

const NONCE_LENGTH = 12;
/** Bytes of the length field: 15 - nonce length. */
const L = 3;

/** Scratch for the CBC-MAC input and the counter blocks; Node copies what it is given. */
let macIn: Buffer = Buffer.alloc(2048);
let ctrIn: Buffer = Buffer.alloc(2048);

function ensure(buf: Buffer, n: number): Buffer {
  return buf.length >= n ? buf : Buffer.alloc(Math.max(n, buf.length * 2));
}

export class CcmKey {
  private readonly cbc: Cipher;
  private readonly ecb: Cipher;
  /** The CBC context's last output block (its current chaining value). */
  private readonly chain = Buffer.alloc(16);

  constructor(key: Buffer) {
    this.cbc = createCipheriv('aes-128-cbc', key, Buffer.alloc(16));
    this.cbc.setAutoPadding(false);
    this.ecb = createCipheriv('aes-128-ecb', key, null);
    this.ecb.setAutoPadding(false);
  }

  /** CBC-MAC over B0 | encoded AAD | message (zero-padded blocks); returns the 16-byte T. */
  private mac(nonce: Buffer, aad: Buffer, message: Buffer, tagLength: number): Buffer {
    const aadBlocks = (2 + aad.length + 15) >> 4;
    const msgBlocks = (message.length + 15) >> 4;
    const n = 16 * (1 + aadBlocks + msgBlocks);
    macIn = ensure(macIn, n);
    const b = macIn;
    b.fill(0, 0, n);
    b[0] = 0x40 | (((tagLength - 2) >> 1) << 3) | (L - 1);
    nonce.copy(b, 1, 0, NONCE_LENGTH);
    b[13] = (message.length >> 16) & 0xff;
    b[14] = (message.length >> 8) & 0xff;
    b[15] = message.length & 0xff;
    b[16] = aad.length >> 8;
    b[17] = aad.length & 0xff;
    aad.copy(b, 18);
    message.copy(b, 16 * (1 + aadBlocks));
    const chain = this.chain;
    for (let i = 0; i < 16; i++) b[i] ^= chain[i];
    const out = this.cbc.update(b.subarray(0, n));
    out.copy(chain, 0, n - 16, n);
    return chain;
  }

  /** Keystream for A0…A(blocks): A0's block first. */
  private keystream(nonce: Buffer, blocks: number): Buffer {
    const n = 16 * (1 + blocks);
    ctrIn = ensure(ctrIn, n);
    const c = ctrIn;
    for (let k = 0, o = 0; k <= blocks; k++, o += 16) {
      c[o] = L - 1;
      nonce.copy(c, o + 1, 0, NONCE_LENGTH);
      c[o + 13] = (k >> 16) & 0xff;
      c[o + 14] = (k >> 8) & 0xff;
      c[o + 15] = k & 0xff;
    }
    return this.ecb.update(c.subarray(0, n));
  }

  /** Encrypts `plaintext` into `out` at `at`: ciphertext, then the tag. */
  seal(nonce: Buffer, aad: Buffer, plaintext: Buffer, tagLength: number, out: Buffer, at: number): void {
    const t = this.mac(nonce, aad, plaintext, tagLength);
    const ks = this.keystream(nonce, (plaintext.length + 15) >> 4);
    const len = plaintext.length;
    for (let i = 0; i < len; i++) out[at + i] = plaintext[i] ^ ks[16 + i];
    for (let i = 0; i < tagLength; i++) out[at + len + i] = t[i] ^ ks[i];
  }

  /** Decrypts and authenticates; undefined when the tag does not match. */
  open(nonce: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer): Buffer | undefined {
    const len = ciphertext.length;
    const ks = this.keystream(nonce, (len + 15) >> 4);
    const plaintext = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) plaintext[i] = ciphertext[i] ^ ks[16 + i];
    const t = this.mac(nonce, aad, plaintext, tag.length);
    let diff = 0;
    for (let i = 0; i < tag.length; i++) diff |= t[i] ^ ks[i] ^ tag[i];
    return diff === 0 ? plaintext : undefined;
  }
}
