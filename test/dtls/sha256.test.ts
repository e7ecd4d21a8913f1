import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256, Sha256, sha256 } from '../../src/dtls/crypto/sha256.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** HMAC over the concatenation of `parts`, through begin/update/end. */
function mac(hmac: HmacSha256, parts: Uint8Array[]): Buffer {
  const h = hmac.begin();
  for (const p of parts) h.update(p);
  const out = Buffer.alloc(32);
  hmac.end(out);
  return out;
}

/** A deterministic byte source, so a failure can be replayed. */
function bytes(seed: number, n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('SHA-256 (FIPS 180-4 examples)', () => {
  it('hashes the empty string, "abc" and the two-block message', () => {
    expect(sha256(Buffer.alloc(0)).toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(sha256(Buffer.from('abc')).toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(
      sha256(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toString('hex'),
    ).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('hashes one million "a"s fed in uneven pieces', () => {
    const h = new Sha256();
    const chunk = Buffer.alloc(997, 'a');
    let left = 1_000_000;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      h.update(chunk, 0, n);
      left -= n;
    }
    expect(h.digest().toString('hex')).toBe(
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    );
  });

  it('agrees with node:crypto on every length around the padding boundaries, in random pieces', () => {
    for (let len = 0; len <= 300; len++) {
      const data = bytes(len + 1, len);
      const h = new Sha256();
      let at = 0;
      let seed = len * 7 + 3;
      while (at < len) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const n = Math.min(len - at, seed % 70);
        h.update(data, at, at + n);
        at += n;
      }
      expect(h.digest().toString('hex'), `length ${len}`).toBe(
        createHash('sha256').update(data).digest('hex'),
      );
    }
  });

  it('digest does not end the hash; a copy goes on independently', () => {
    const h = new Sha256().update(Buffer.from('hello '));
    const early = h.digest();
    const c = h.copy().update(Buffer.from('there'));
    h.update(Buffer.from('world'));
    expect(early).toEqual(createHash('sha256').update('hello ').digest());
    expect(h.digest()).toEqual(createHash('sha256').update('hello world').digest());
    expect(c.digest()).toEqual(createHash('sha256').update('hello there').digest());
  });
});

describe('HMAC-SHA256 (RFC 4231 test cases)', () => {
  const cases: [string, Buffer, Buffer, string][] = [
    [
      '1',
      Buffer.alloc(20, 0x0b),
      Buffer.from('Hi There'),
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    ],
    [
      '2',
      Buffer.from('Jefe'),
      Buffer.from('what do ya want for nothing?'),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    ],
    [
      '3',
      Buffer.alloc(20, 0xaa),
      Buffer.alloc(50, 0xdd),
      '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
    ],
    [
      '4',
      hex('0102030405060708090a0b0c0d0e0f10111213141516171819'),
      Buffer.alloc(50, 0xcd),
      '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
    ],
    [
      '6 (key longer than a block)',
      Buffer.alloc(131, 0xaa),
      Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
      '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
    ],
    [
      '7 (long key and message)',
      Buffer.alloc(131, 0xaa),
      Buffer.from(
        'This is a test using a larger than block-size key and a larger than block-size data. ' +
          'The key needs to be hashed before being used by the HMAC algorithm.',
      ),
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    ],
  ];
  for (const [name, key, data, expected] of cases) {
    it(`test case ${name}`, () => {
      expect(mac(new HmacSha256(key), [data]).toString('hex')).toBe(expected);
    });
  }

  it('test case 5 (output truncated to 128 bits)', () => {
    const tag = mac(new HmacSha256(Buffer.alloc(20, 0x0c)), [Buffer.from('Test With Truncation')]);
    expect(tag.subarray(0, 16).toString('hex')).toBe('a3b6167473100ee06e0c796c2955552b');
  });

  it('agrees with node:crypto for keys of 0–130 bytes and messages in parts, one key used many times', () => {
    for (let k = 0; k <= 130; k++) {
      const key = bytes(1000 + k, k);
      const hmac = new HmacSha256(key);
      for (const len of [0, 1, 31, 55, 56, 64, 77, 119, 120, 200]) {
        const data = bytes(k * 1000 + len, len);
        const cut = len >> 1;
        const ours = mac(hmac, [data.subarray(0, cut), data.subarray(cut)]);
        expect(ours.toString('hex'), `key ${k} bytes, message ${len}`).toBe(
          createHmac('sha256', key).update(data).digest('hex'),
        );
      }
    }
  });

  it('begin/end writes the MAC at an offset', () => {
    const hmac = new HmacSha256(Buffer.from('key'));
    const out = Buffer.alloc(40, 0xee);
    hmac.begin().update(Buffer.from('The quick brown fox jumps over the lazy dog'));
    hmac.end(out, 4);
    expect(out.subarray(4, 36).toString('hex')).toBe(
      'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    );
    expect(out.subarray(0, 4)).toEqual(Buffer.alloc(4, 0xee));
    expect(out.subarray(36)).toEqual(Buffer.alloc(4, 0xee));
  });
});
