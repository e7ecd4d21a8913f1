/**
 * The PSK AEAD cipher suites the server offers: AES-128 in CCM with an 8- or 16-byte tag (RFC 6655) and in
 * GCM (RFC 5487). All use the SHA-256 PRF, a 16-byte key and a 4-byte implicit nonce salt.
 */
import type { CipherSuiteName } from '../../config/dtls.js';

export interface CipherSuite {
  readonly id: number;
  readonly name: CipherSuiteName;
  /** Node cipher name. */
  readonly algorithm: 'aes-128-ccm' | 'aes-128-gcm';
  readonly ccm: boolean;
  readonly tagLength: number;
}

export const KEY_LENGTH = 16;
export const SALT_LENGTH = 4;
export const EXPLICIT_NONCE_LENGTH = 8;
/** Key block for an AEAD suite: client key, server key, client salt, server salt (no MAC keys). */
export const KEY_BLOCK_LENGTH = 2 * KEY_LENGTH + 2 * SALT_LENGTH;

export const CIPHER_SUITES: readonly CipherSuite[] = [
  { id: 0xc0a8, name: 'TLS_PSK_WITH_AES_128_CCM_8', algorithm: 'aes-128-ccm', ccm: true, tagLength: 8 },
  {
    id: 0x00a8,
    name: 'TLS_PSK_WITH_AES_128_GCM_SHA256',
    algorithm: 'aes-128-gcm',
    ccm: false,
    tagLength: 16,
  },
  { id: 0xc0a4, name: 'TLS_PSK_WITH_AES_128_CCM', algorithm: 'aes-128-ccm', ccm: true, tagLength: 16 },
];

export function suiteByName(name: CipherSuiteName): CipherSuite {
  const s = CIPHER_SUITES.find((c) => c.name === name);
  if (!s) throw new Error(`unknown cipher suite ${name}`);
  return s;
}
