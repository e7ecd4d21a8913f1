import { createCipheriv, createDecipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CcmKey } from '../../src/dtls/crypto/ccm.js';
import { prng, randomBytes } from '../support/prng.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function nativeSeal(key: Buffer, nonce: Buffer, aad: Buffer, pt: Buffer, tagLength: number): Buffer {
  const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: tagLength });
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = c.update(pt);
  c.final();
  return Buffer.concat([ct, c.getAuthTag()]);
}

function nativeOpen(key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer, tagLength: number): Buffer {
  const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: tagLength });
  d.setAuthTag(sealed.subarray(sealed.length - tagLength));
  d.setAAD(aad, { plaintextLength: sealed.length - tagLength });
  const pt = d.update(sealed.subarray(0, sealed.length - tagLength));
  d.final();
  return pt;
}

function seal(k: CcmKey, nonce: Buffer, aad: Buffer, pt: Buffer, tagLength: number): Buffer {
  const out = Buffer.alloc(pt.length + tagLength);
  k.seal(nonce, aad, pt, tagLength, out, 0);
  return out;
}

describe('AES-CCM from reusable contexts', () => {
  it('matches NIST SP 800-38C example 3 (12-byte nonce, 8-byte tag)', () => {
    const key = hex('404142434445464748494a4b4c4d4e4f');
    const nonce = hex('101112131415161718191a1b');
    const aad = hex('000102030405060708090a0b0c0d0e0f10111213');
    const pt = hex('202122232425262728292a2b2c2d2e2f3031323334353637');
    const expected = hex('e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5 484392fbc1b09951');
    expect(seal(new CcmKey(key), nonce, aad, pt, 8)).toEqual(expected);
    expect(new CcmKey(key).open(nonce, aad, expected.subarray(0, 24), expected.subarray(24))).toEqual(pt);
  });

  it('matches Node’s aes-128-ccm on random messages, many in a row on one key (8- and 16-byte tags)', () => {
    const rand = prng(3610);
    const key = randomBytes(rand, 16);
    const sealer = new CcmKey(key);
    const opener = new CcmKey(key);
    for (let i = 0; i < 2000; i++) {
      const tagLength = i % 2 ? 8 : 16;
      const nonce = randomBytes(rand, 12);
      const aad = randomBytes(rand, [13, 23, 29, 37][i % 4]);
      const pt = randomBytes(rand, 1 + Math.floor(rand() * (i % 10 === 0 ? 1500 : 80)));
      const sealed = seal(sealer, nonce, aad, pt, tagLength);
      expect(sealed).toEqual(nativeSeal(key, nonce, aad, pt, tagLength));
      const ct = sealed.subarray(0, pt.length);
      const tag = sealed.subarray(pt.length);
      expect(opener.open(nonce, aad, ct, tag)).toEqual(pt);
      expect(nativeOpen(key, nonce, aad, sealed, tagLength)).toEqual(pt);
    }
  });

  it('rejects a changed tag, ciphertext, nonce or AAD, and keeps working afterwards', () => {
    const rand = prng(77);
    const key = randomBytes(rand, 16);
    const k = new CcmKey(key);
    const nonce = randomBytes(rand, 12);
    const aad = randomBytes(rand, 13);
    const pt = randomBytes(rand, 40);
    const sealed = seal(k, nonce, aad, pt, 8);
    const ct = Buffer.from(sealed.subarray(0, 40));
    const tag = Buffer.from(sealed.subarray(40));
    const flip = (b: Buffer, i: number) => {
      const c = Buffer.from(b);
      c[i] ^= 1;
      return c;
    };
    expect(k.open(nonce, aad, ct, flip(tag, 7))).toBeUndefined();
    expect(k.open(nonce, aad, flip(ct, 0), tag)).toBeUndefined();
    expect(k.open(flip(nonce, 11), aad, ct, tag)).toBeUndefined();
    expect(k.open(nonce, flip(aad, 12), ct, tag)).toBeUndefined();
    expect(k.open(nonce, aad, ct, tag)).toEqual(pt);
  });
});
