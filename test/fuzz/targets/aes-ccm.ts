/**
 * The WebAssembly AES-CCM (`src/dtls/crypto/ccm.ts`) against Node's `aes-128-ccm` (OpenSSL): random keys,
 * nonces, additional data of any length, messages up to the largest that fits one call, every tag length
 * CCM allows, the key at any offset of a larger buffer. Sealing gives Node's bytes exactly, and writes
 * nothing outside its output; opening gives the plaintext back, and refuses the record when one bit of its
 * tag, ciphertext, additional data or nonce changed.
 */
import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { ccmFits, ccmOpen, ccmSeal } from '../../../src/dtls/crypto/ccm.js';
import { bytesOf, fail, must, type FuzzTarget } from '../target.js';

export interface CcmInput {
  key: Buffer;
  /** Where the key sits in the key buffer. */
  keyAt: number;
  nonce: Buffer;
  aad: Buffer;
  plaintext: Buffer;
  tagLength: number;
  /** Which bit to flip in the tampering check (modulo the bits of tag + ciphertext + aad + nonce). */
  flip: number;
}

function nativeSeal(i: CcmInput): Buffer {
  const c = createCipheriv('aes-128-ccm', i.key, i.nonce, { authTagLength: i.tagLength });
  c.setAAD(i.aad, { plaintextLength: i.plaintext.length });
  const ct = c.update(i.plaintext);
  c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}

const lengthArbitrary = fc.oneof(
  { weight: 6, arbitrary: fc.nat(100) },
  { weight: 2, arbitrary: fc.nat(1500) },
  { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 16_400 }) },
);

const inputArbitrary: fc.Arbitrary<CcmInput> = fc
  .record({
    key: bytesOf(16),
    keyAt: fc.nat(40),
    nonce: bytesOf(12),
    aadLength: fc.oneof(fc.constantFrom(0, 13, 23, 29, 37), fc.nat(300)),
    length: lengthArbitrary,
    tagLength: fc.constantFrom(4, 6, 8, 10, 12, 14, 16),
    flip: fc.nat(),
    fill: fc.nat(),
  })
  .map(({ aadLength, length, fill, ...rest }) => ({
    ...rest,
    // Message and AAD bytes from a cheap counter stream: their content matters less than their lengths.
    aad: Buffer.from(Array.from({ length: aadLength }, (_, i) => (fill + 7 * i) & 0xff)),
    plaintext: Buffer.from(Array.from({ length }, (_, i) => (fill * 31 + i * 13 + (i >> 8)) & 0xff)),
  }));

export const aesCcm: FuzzTarget<CcmInput> = {
  name: 'aes-ccm',
  description: "WebAssembly AES-CCM = Node's aes-128-ccm; opening refuses any flipped bit",
  shortRuns: 400,
  seed: (file) => {
    const j = JSON.parse(file.toString()) as Record<string, string | number>;
    const hex = (k: string) => Buffer.from(j[k] as string, 'hex');
    return {
      key: hex('key'),
      keyAt: 0,
      nonce: hex('nonce'),
      aad: hex('aad'),
      plaintext: hex('plaintext'),
      tagLength: j.tagLength as number,
      flip: 0,
    };
  },
  arbitrary: (seeds) =>
    fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...seeds) }, { weight: 9, arbitrary: inputArbitrary }),
  check(i) {
    const len = i.plaintext.length;
    if (!ccmFits(len, i.aad.length)) return;
    const keys = Buffer.alloc(i.keyAt + 16 + 5, 0xee);
    i.key.copy(keys, i.keyAt);
    const out = Buffer.alloc(len + i.tagLength + 6, 0xcc);
    ccmSeal(keys, i.keyAt, i.nonce, i.aad, i.plaintext, i.tagLength, out, 3);
    const sealed = out.subarray(3, 3 + len + i.tagLength);
    must(sealed.equals(nativeSeal(i)), 'sealed bytes differ from aes-128-ccm');
    must(
      out.subarray(0, 3).every((b) => b === 0xcc) && out.subarray(-3).every((b) => b === 0xcc),
      'no stray write',
    );
    const ct = sealed.subarray(0, len);
    const tag = sealed.subarray(len);
    const opened = ccmOpen(keys, i.keyAt, i.nonce, i.aad, ct, tag);
    if (!opened || !opened.equals(i.plaintext)) fail('opening does not give the plaintext back');
    // One flipped bit anywhere the tag covers.
    const parts = [Buffer.from(tag), Buffer.from(ct), Buffer.from(i.aad), Buffer.from(i.nonce)];
    const bits = 8 * parts.reduce((n, p) => n + p.length, 0);
    let bit = i.flip % bits;
    const which = parts.findIndex((p) => (bit < 8 * p.length ? true : ((bit -= 8 * p.length), false)));
    parts[which][bit >> 3] ^= 1 << (bit & 7);
    const [t, c, a, n] = parts;
    must(ccmOpen(keys, i.keyAt, n, a, c, t) === undefined, `a flipped bit in part ${which} was not noticed`);
  },
};
