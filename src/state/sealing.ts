/**
 * Sealing of secrets kept in the shared store: AES-256-GCM under a keyring read from
 * `state.encryptionKeyFile`, with associated data naming what is sealed (a session id), so a sealed value
 * copied onto another session's key does not open.
 *
 * Keyring file: one key per line, `<id>:<key>`, the current key (the one that seals) first; the others only
 * open what was sealed before a rotation. `<id>` is 0–255; `<key>` is 32 bytes as 64 hex or 44 base64
 * characters. A file holding one bare key (text as above, or exactly 32 raw bytes) is key id 0. Blank lines
 * and `#` comments are ignored.
 *
 * Sealed layout: key id (1 byte) ‖ IV (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes).
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes a sealed value adds to its plaintext. */
export const SEAL_OVERHEAD = 1 + IV_BYTES + TAG_BYTES;

/** A keyring file that cannot be read or parsed: a configuration mistake (exit code 78). */
export class KeyringError extends ConfigError {
  override readonly name = 'KeyringError';
  override readonly code = 'CELLGATE_KEYRING_INVALID';
}

function parseKey(text: string, where: string): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, 'base64');
  throw new KeyringError(`${where}: a key is 32 bytes written as 64 hex or 44 base64 characters`);
}

export class Keyring {
  /** Key id that seals. */
  readonly current: number;
  /** Keys as KeyObjects: a cipher made from one skips importing the raw key every time. */
  private readonly keys = new Map<number, KeyObject>();

  constructor(keys: [id: number, key: Buffer][]) {
    if (keys.length === 0) throw new KeyringError('the keyring holds no key');
    for (const [id, key] of keys) {
      if (!Number.isInteger(id) || id < 0 || id > 255) throw new KeyringError(`key id ${id} is not 0–255`);
      if (key.length !== KEY_BYTES) throw new KeyringError(`key ${id} is not ${KEY_BYTES} bytes`);
      if (this.keys.has(id)) throw new KeyringError(`key id ${id} appears twice`);
      this.keys.set(id, createSecretKey(Buffer.from(key)));
    }
    this.current = keys[0][0];
  }

  /** Key ids, the current one first. */
  get ids(): number[] {
    return [...this.keys.keys()];
  }

  /** Reads and checks a keyring file (see the module comment for its format). */
  static fromFile(file: string): Keyring {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (err) {
      throw new KeyringError(`cannot read state.encryptionKeyFile: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (data.length === KEY_BYTES && !/^[\x20-\x7e]*$/.test(data.toString('latin1')))
      return new Keyring([[0, data]]);
    return Keyring.parse(data.toString('utf8'), 'state.encryptionKeyFile');
  }

  static parse(text: string, source = 'keyring'): Keyring {
    const lines = text
      .split(/\r?\n/)
      .map((l, i) => ({ l: l.trim(), n: i + 1 }))
      .filter(({ l }) => l !== '' && !l.startsWith('#'));
    if (lines.length === 1 && !lines[0].l.includes(':'))
      return new Keyring([[0, parseKey(lines[0].l, `${source} line ${lines[0].n}`)]]);
    return new Keyring(
      lines.map(({ l, n }) => {
        const m = /^(\d{1,3}):(\S+)$/.exec(l);
        if (!m) throw new KeyringError(`${source} line ${n}: expected <id>:<key>`);
        return [Number(m[1]), parseKey(m[2], `${source} line ${n}`)];
      }),
    );
  }

  /** `plain` sealed under the current key, bound to `aad`. */
  seal(plain: Buffer, aad: Buffer): Buffer {
    const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plain.length);
    out[0] = this.current;
    const iv = randomBytes(IV_BYTES);
    iv.copy(out, 1);
    const c = createCipheriv('aes-256-gcm', this.keys.get(this.current) as KeyObject, iv);
    c.setAAD(aad);
    const n = c.update(plain).copy(out, 1 + IV_BYTES);
    c.final();
    c.getAuthTag().copy(out, 1 + IV_BYTES + n);
    return out;
  }

  /** The plaintext, or undefined when the key is unknown or the value or its `aad` was altered. */
  open(sealed: Buffer, aad: Buffer): Buffer | undefined {
    if (sealed.length < SEAL_OVERHEAD) return undefined;
    const key = this.keys.get(sealed[0]);
    if (!key) return undefined;
    const end = sealed.length - TAG_BYTES;
    try {
      const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + IV_BYTES));
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(end));
      const head = d.update(sealed.subarray(1 + IV_BYTES, end));
      const tail = d.final();
      return tail.length ? Buffer.concat([head, tail]) : head;
    } catch {
      return undefined;
    }
  }

  /** The key id a sealed value names (to tell values sealed before a rotation). */
  static keyId(sealed: Buffer): number {
    return sealed[0];
  }
}
