import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  aesSimd,
  AREA_BYTES,
  CTR_AREA,
  KEY,
  MAC,
  MAC_AREA,
  ROUND_KEYS,
  sbox,
} from '../../src/dtls/crypto/aes-simd.js';
import { ccmAvailable, ccmFits, ccmOpen, ccmSeal } from '../../src/dtls/crypto/ccm.js';
import { prng, randomBytes } from '../support/prng.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function nativeSeal(key: Buffer, nonce: Buffer, aad: Buffer, pt: Buffer, tagLength: number): Buffer {
  const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: tagLength });
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = c.update(pt);
  c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}

/** Seals with the key placed at an offset of a larger buffer, as session keys sit in a slab. */
function seal(key: Buffer, nonce: Buffer, aad: Buffer, pt: Buffer, tagLength: number): Buffer {
  const slab = Buffer.concat([Buffer.alloc(7, 0xee), key, Buffer.alloc(5, 0xee)]);
  const out = Buffer.alloc(pt.length + tagLength + 3, 0xcc);
  ccmSeal(slab, 7, nonce, aad, pt, tagLength, out, 3);
  expect(out.subarray(0, 3)).toEqual(Buffer.alloc(3, 0xcc));
  return out.subarray(3);
}

function open(key: Buffer, nonce: Buffer, aad: Buffer, ct: Buffer, tag: Buffer): Buffer | undefined {
  return ccmOpen(key, 0, nonce, aad, ct, tag);
}

const aes = aesSimd;

/** Encrypts blocks with the module (ECB: the counter area), and the CBC-MAC of other blocks. */
function aesRun(key: Buffer, ecbIn: Buffer, macIn: Buffer): { ecb: Buffer; mac: Buffer } {
  const a = aes!;
  key.copy(a.memory, KEY);
  a.expand();
  ecbIn.copy(a.memory, CTR_AREA);
  macIn.copy(a.memory, MAC_AREA);
  a.run(macIn.length / 16, ecbIn.length / 16, 0);
  return {
    ecb: Buffer.from(a.memory.subarray(CTR_AREA, CTR_AREA + ecbIn.length)),
    mac: Buffer.from(a.memory.subarray(MAC, MAC + 16)),
  };
}

describe('AES-128 in WebAssembly SIMD', () => {
  it('is available on this platform (Node 20 on x86-64 and arm64)', () => {
    expect(aes).toBeDefined();
    expect(ccmAvailable).toBe(true);
  });

  it('computes the FIPS 197 S-box (a permutation with its known entries)', () => {
    const s = sbox();
    expect(new Set(s).size).toBe(256);
    expect([s[0x00], s[0x01], s[0x53], s[0xff], s[0x10]]).toEqual([0x63, 0x7c, 0xed, 0x16, 0xca]);
  });

  it('matches FIPS 197 Appendix B and C.1 and SP 800-38A F.1.1 (ECB) known answers', () => {
    expect(
      aesRun(
        hex('2b7e151628aed2a6abf7158809cf4f3c'),
        hex('3243f6a8885a308d313198a2e0370734'),
        Buffer.alloc(0),
      ).ecb,
    ).toEqual(hex('3925841d02dc09fbdc118597196a0b32'));
    expect(
      aesRun(
        hex('000102030405060708090a0b0c0d0e0f'),
        hex('00112233445566778899aabbccddeeff'),
        Buffer.alloc(0),
      ).ecb,
    ).toEqual(hex('69c4e0d86a7b0430d8cdb78070b4c55a'));
    const sp = aesRun(
      hex('2b7e151628aed2a6abf7158809cf4f3c'),
      hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
           30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`),
      Buffer.alloc(0),
    );
    expect(sp.ecb).toEqual(
      hex(`3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf
           43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4`),
    );
  });

  it('matches SP 800-38A F.2.1 (CBC) as a CBC-MAC, interleaved with counter blocks or alone', () => {
    const key = hex('2b7e151628aed2a6abf7158809cf4f3c');
    const iv = hex('000102030405060708090a0b0c0d0e0f');
    const pt = hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                    30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`);
    // CBC with an IV is a CBC-MAC (IV 0) whose first block is IV ^ P1.
    const first = Buffer.from(pt);
    for (let i = 0; i < 16; i++) first[i] ^= iv[i];
    const lastCipherBlock = hex('3ff1caa1681fac09120eca307586e1a7');
    for (const ecbBlocks of [0, 1, 2, 3, 4, 5]) {
      const ecbIn = randomBytes(prng(ecbBlocks), 16 * ecbBlocks);
      const r = aesRun(key, ecbIn, first);
      expect(r.mac).toEqual(lastCipherBlock);
      expect(r.ecb).toEqual(createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(ecbIn));
    }
  });

  it('matches Node’s AES on random keys and block counts', () => {
    const rand = prng(197);
    for (let i = 0; i < 500; i++) {
      const key = randomBytes(rand, 16);
      const ecbIn = randomBytes(rand, 16 * Math.floor(rand() * 9));
      const macIn = randomBytes(rand, 16 * Math.floor(rand() * 9));
      const r = aesRun(key, ecbIn, macIn);
      expect(r.ecb).toEqual(createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(ecbIn));
      const cbc = createCipheriv('aes-128-cbc', key, Buffer.alloc(16)).setAutoPadding(false).update(macIn);
      expect(r.mac).toEqual(macIn.length ? cbc.subarray(cbc.length - 16) : Buffer.alloc(16));
    }
  });
});

// Random keys, nonces, lengths and AAD against Node's aes-128-ccm: the aes-ccm target of test/fuzz.
describe('AES-CCM', () => {
  it('matches NIST SP 800-38C example 3 (12-byte nonce, 8-byte tag)', () => {
    const key = hex('404142434445464748494a4b4c4d4e4f');
    const nonce = hex('101112131415161718191a1b');
    const aad = hex('000102030405060708090a0b0c0d0e0f10111213');
    const pt = hex('202122232425262728292a2b2c2d2e2f3031323334353637');
    const expected = hex('e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5 484392fbc1b09951');
    expect(seal(key, nonce, aad, pt, 8)).toEqual(expected);
    expect(open(key, nonce, aad, expected.subarray(0, 24), expected.subarray(24))).toEqual(pt);
  });

  it('handles the largest DTLS record (2^14 bytes) and says what does not fit one call', () => {
    const rand = prng(14);
    const key = randomBytes(rand, 16);
    const nonce = randomBytes(rand, 12);
    const aad = randomBytes(rand, 13);
    const pt = randomBytes(rand, 16384 + 1);
    expect(ccmFits(pt.length, 37)).toBe(true);
    expect(seal(key, nonce, aad, pt, 8)).toEqual(nativeSeal(key, nonce, aad, pt, 8));
    expect(ccmFits(AREA_BYTES - 48, 13)).toBe(true);
    expect(ccmFits(AREA_BYTES - 47, 13)).toBe(false);
  });

  it('rejects a changed tag, ciphertext, nonce or AAD, and keeps working afterwards', () => {
    const rand = prng(77);
    const key = randomBytes(rand, 16);
    const nonce = randomBytes(rand, 12);
    const aad = randomBytes(rand, 13);
    const pt = randomBytes(rand, 40);
    const sealed = seal(key, nonce, aad, pt, 8);
    const ct = Buffer.from(sealed.subarray(0, 40));
    const tag = Buffer.from(sealed.subarray(40));
    const flip = (b: Buffer, i: number) => {
      const c = Buffer.from(b);
      c[i] ^= 1;
      return c;
    };
    expect(open(key, nonce, aad, ct, flip(tag, 7))).toBeUndefined();
    expect(open(key, nonce, aad, flip(ct, 0), tag)).toBeUndefined();
    expect(open(key, flip(nonce, 11), aad, ct, tag)).toBeUndefined();
    expect(open(key, nonce, flip(aad, 12), ct, tag)).toBeUndefined();
    expect(open(flip(key, 3), nonce, aad, ct, tag)).toBeUndefined();
    expect(open(key, nonce, aad, ct, tag)).toEqual(pt);
  });

  it('leaves neither the key nor its round keys in the module’s memory after a record', () => {
    const rand = prng(5);
    const key = randomBytes(rand, 16);
    const sealed = seal(key, randomBytes(rand, 12), randomBytes(rand, 13), randomBytes(rand, 30), 8);
    expect(sealed.length).toBe(38);
    // Round keys and key occupy bytes ROUND_KEYS (256) to KEY + 16 (464).
    expect(aes!.memory.subarray(ROUND_KEYS, KEY + 16).every((b) => b === 0)).toBe(true);
    expect(aes!.memory.indexOf(key)).toBe(-1);
  });
});
