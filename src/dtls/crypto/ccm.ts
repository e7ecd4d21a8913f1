/**
 * AES-CCM (RFC 3610, NIST SP 800-38C) for 12-byte nonces, over the WebAssembly SIMD AES of `aes-simd.ts`:
 * no cipher object per record and no state per key, so a session costs the same whether it sent a record a
 * millisecond or a day ago, and a server with 10,000 busy sessions pays per record what one with 200 pays.
 *
 * - CBC-MAC over B0 | encoded additional data | message (zero-padded blocks) gives T.
 * - The counter blocks A0…An are encrypted in one go; A0's block masks the tag, the others the message.
 *
 * Sealing runs both in one call (interleaved); opening first makes the keystream, then MACs the plaintext.
 * Results are identical to Node's `aes-128-ccm` (the tests check RFC 3610 / SP 800-38C vectors and random
 * ones against it). The tag check does not stop at the first differing byte. Where WebAssembly SIMD is not
 * available, `ccmFits` is always false and callers use Node's cipher.
 */
import { aesSimd, AREA_BYTES, CTR_AREA, KEY, MAC, MAC_AREA } from './aes-simd.js';

const NONCE_LENGTH = 12;
/** Bytes of the length field: 15 - nonce length. */
const L = 3;

const aes = aesSimd;
const mem = aes?.memory ?? Buffer.alloc(0);

/** Whether this process has the WebAssembly SIMD AES. */
export const ccmAvailable = aes !== undefined;

/**
 * Whether a message of `length` bytes with `aadLength` bytes of additional data can be sealed or opened here:
 * the SIMD AES is available and the message fits one call.
 */
export function ccmFits(length: number, aadLength: number): boolean {
  return ccmAvailable && 16 * (2 + ((2 + aadLength + 15) >> 4) + ((length + 15) >> 4)) <= AREA_BYTES;
}

/** Copies `n` bytes; a loop beats a native call for the few dozen bytes of most records. */
function copy(src: Uint8Array, from: number, dst: Uint8Array, to: number, n: number): void {
  if (n > 64) dst.set(src.subarray(from, from + n), to);
  else for (let i = 0; i < n; i++) dst[to + i] = src[from + i];
}

/** The key (16 bytes of `keys` at `at`) into the module, expanded. */
function setKey(keys: Buffer, at: number): void {
  copy(keys, at, mem, KEY, 16);
  aes!.expand();
}

/** B0 | encoded AAD into the MAC area, zero padding included; returns where the message goes. */
function macHeader(nonce: Buffer, aad: Buffer, length: number, tagLength: number): number {
  // Without additional data, B0's Adata flag is clear and no length is encoded (RFC 3610 §2.2).
  const aadBlocks = aad.length > 0 ? (2 + aad.length + 15) >> 4 : 0;
  const msgAt = MAC_AREA + 16 * (1 + aadBlocks);
  mem.fill(0, MAC_AREA, msgAt + 16 * ((length + 15) >> 4));
  mem[MAC_AREA] = (aad.length > 0 ? 0x40 : 0) | (((tagLength - 2) >> 1) << 3) | (L - 1);
  copy(nonce, 0, mem, MAC_AREA + 1, NONCE_LENGTH);
  mem[MAC_AREA + 13] = (length >> 16) & 0xff;
  mem[MAC_AREA + 14] = (length >> 8) & 0xff;
  mem[MAC_AREA + 15] = length & 0xff;
  if (aad.length > 0) {
    mem[MAC_AREA + 16] = aad.length >> 8;
    mem[MAC_AREA + 17] = aad.length & 0xff;
    copy(aad, 0, mem, MAC_AREA + 18, aad.length);
  }
  return msgAt;
}

/** Counter blocks A0…A(blocks) into the counter area; returns how many. */
function counters(nonce: Buffer, blocks: number): number {
  for (let k = 0, o = CTR_AREA; k <= blocks; k++, o += 16) {
    mem[o] = L - 1;
    copy(nonce, 0, mem, o + 1, NONCE_LENGTH);
    mem[o + 13] = (k >> 16) & 0xff;
    mem[o + 14] = (k >> 8) & 0xff;
    mem[o + 15] = k & 0xff;
  }
  return blocks + 1;
}

/**
 * Encrypts `plaintext` with the key at `keys[at…at+16]` into `out` at `outAt`: ciphertext, then the tag.
 * The caller checks `ccmFits` first.
 */
export function ccmSeal(
  keys: Buffer,
  at: number,
  nonce: Buffer,
  aad: Buffer,
  plaintext: Buffer,
  tagLength: number,
  out: Buffer,
  outAt: number,
): void {
  const len = plaintext.length;
  const msgAt = macHeader(nonce, aad, len, tagLength);
  copy(plaintext, 0, mem, msgAt, len);
  const ctrBlocks = counters(nonce, (len + 15) >> 4);
  setKey(keys, at);
  aes!.run((msgAt - MAC_AREA + len + 15) >> 4, ctrBlocks, 1);
  for (let i = 0; i < len; i++) out[outAt + i] = plaintext[i] ^ mem[CTR_AREA + 16 + i];
  for (let i = 0; i < tagLength; i++) out[outAt + len + i] = mem[MAC + i] ^ mem[CTR_AREA + i];
}

/** Decrypts and authenticates; undefined when the tag does not match. The caller checks `ccmFits` first. */
export function ccmOpen(
  keys: Buffer,
  at: number,
  nonce: Buffer,
  aad: Buffer,
  ciphertext: Buffer,
  tag: Buffer,
): Buffer | undefined {
  const len = ciphertext.length;
  const ctrBlocks = counters(nonce, (len + 15) >> 4);
  setKey(keys, at);
  aes!.run(0, ctrBlocks, 0);
  const msgAt = macHeader(nonce, aad, len, tag.length);
  const plaintext = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) {
    const b = ciphertext[i] ^ mem[CTR_AREA + 16 + i];
    plaintext[i] = b;
    mem[msgAt + i] = b;
  }
  aes!.run((msgAt - MAC_AREA + len + 15) >> 4, 0, 1);
  let diff = 0;
  for (let i = 0; i < tag.length; i++) diff |= mem[MAC + i] ^ mem[CTR_AREA + i] ^ tag[i];
  return diff === 0 ? plaintext : undefined;
}
