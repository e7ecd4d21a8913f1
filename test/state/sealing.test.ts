/** The keyring that seals session secrets in the shared store: file formats, rotation, tampering. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { Keyring, SEAL_OVERHEAD } from '../../src/state/sealing.js';

const K1 = randomBytes(32);
const K2 = randomBytes(32);

function file(data: string | Buffer): string {
  const p = join(mkdtempSync(join(tmpdir(), 'cellgate-keyring-')), 'state.key');
  writeFileSync(p, data);
  return p;
}

describe('keyring', () => {
  it('reads one bare key as id 0 (base64, hex or 32 raw bytes)', () => {
    for (const data of [K1.toString('base64') + '\n', K1.toString('hex'), K1]) {
      const ring = Keyring.fromFile(file(data));
      expect(ring.ids).toEqual([0]);
      const sealed = ring.seal(Buffer.from('secret'), Buffer.from('s1'));
      expect(new Keyring([[0, K1]]).open(sealed, Buffer.from('s1'))?.toString()).toBe('secret');
    }
  });

  it('seals with the first key of a ring and opens with any of its keys (rotation)', () => {
    const before = Keyring.parse(`1:${K1.toString('hex')}\n`);
    const old = before.seal(Buffer.from('a'), Buffer.from('s'));
    const after = Keyring.fromFile(file(`# rotated\n2:${K2.toString('base64')}\n1:${K1.toString('hex')}\n`));
    expect(after.current).toBe(2);
    expect(after.open(old, Buffer.from('s'))?.toString()).toBe('a');
    const fresh = after.seal(Buffer.from('b'), Buffer.from('s'));
    expect(Keyring.keyId(fresh)).toBe(2);
    expect(fresh.length).toBe(1 + SEAL_OVERHEAD);
    // Once the old key is dropped, what it sealed no longer opens.
    expect(Keyring.parse(`2:${K2.toString('hex')}`).open(old, Buffer.from('s'))).toBeUndefined();
  });

  it('refuses a value bound to another id, altered, or truncated', () => {
    const ring = new Keyring([[7, K1]]);
    const sealed = ring.seal(Buffer.from('key material'), Buffer.from('session-a'));
    expect(ring.open(sealed, Buffer.from('session-b'))).toBeUndefined();
    const flipped = Buffer.from(sealed);
    flipped[20] ^= 1;
    expect(ring.open(flipped, Buffer.from('session-a'))).toBeUndefined();
    expect(ring.open(sealed.subarray(0, 10), Buffer.from('session-a'))).toBeUndefined();
    expect(ring.open(sealed, Buffer.from('session-a'))?.toString()).toBe('key material');
    // Never the same IV twice: two seals of one value differ.
    expect(
      ring.seal(Buffer.from('x'), Buffer.from('a')).equals(ring.seal(Buffer.from('x'), Buffer.from('a'))),
    ).toBe(false);
  });

  it('explains what is wrong with a bad keyring file', () => {
    expect(() => Keyring.fromFile('/nonexistent/state.key')).toThrow(/cannot read state\.encryptionKeyFile/);
    expect(() => Keyring.fromFile(file('too-short\n'))).toThrow(/64 hex or 44 base64/);
    expect(() => Keyring.fromFile(file(''))).toThrow(/holds no key/);
    expect(() => Keyring.parse(`1:${K1.toString('hex')}\nnot a key line\n`)).toThrow(
      /line 2: expected <id>:<key>/,
    );
    expect(() => Keyring.parse(`1:${K1.toString('hex')}\n1:${K2.toString('hex')}`)).toThrow(/appears twice/);
    expect(() => Keyring.parse(`300:${K1.toString('hex')}`)).toThrow(/not 0–255/);
  });

  it('marks a bad keyring CELLGATE_KEYRING_INVALID, a configuration mistake', () => {
    for (const read of [() => Keyring.fromFile('/nonexistent/state.key'), () => Keyring.parse('1:short')])
      expect(read).toThrow(
        expect.objectContaining({ name: 'KeyringError', code: 'CELLGATE_KEYRING_INVALID' }),
      );
    expect(() => Keyring.fromFile(file(''))).toThrow(ConfigError);
  });
});
