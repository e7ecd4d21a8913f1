/**
 * The AEAD cipher suites the server offers: PSK with AES-128 in CCM with an 8- or 16-byte tag (RFC 6655) and
 * in GCM (RFC 5487); ECDHE-ECDSA with AES-128-CCM_8 (RFC 7251) and AES-128-GCM (RFC 5289); ECDHE-PSK with
 * AES-128-CCM_8 (RFC 8442). All use the SHA-256 PRF, a 16-byte key and a 4-byte implicit nonce salt, so
 * they share one key block layout.
 */
import type { CipherSuiteName } from '../../config/dtls.js';

export interface CipherSuite {
  readonly id: number;
  readonly name: CipherSuiteName;
  /** Node cipher name. */
  readonly algorithm: 'aes-128-ccm' | 'aes-128-gcm';
  readonly ccm: boolean;
  readonly tagLength: number;
  /** How the premaster secret is agreed and the peers authenticated. */
  readonly keyExchange: KeyExchange;
}

export type KeyExchange = 'psk' | 'ecdhe_psk' | 'ecdhe_ecdsa';

export const KEY_LENGTH = 16;
export const SALT_LENGTH = 4;
export const EXPLICIT_NONCE_LENGTH = 8;
/** Key block for an AEAD suite: client key, server key, client salt, server salt (no MAC keys). */
export const KEY_BLOCK_LENGTH = 2 * KEY_LENGTH + 2 * SALT_LENGTH;

const CCM_8 = { algorithm: 'aes-128-ccm', ccm: true, tagLength: 8 } as const;
const CCM = { algorithm: 'aes-128-ccm', ccm: true, tagLength: 16 } as const;
const GCM = { algorithm: 'aes-128-gcm', ccm: false, tagLength: 16 } as const;

export const CIPHER_SUITES: readonly CipherSuite[] = [
  { id: 0xc0a8, name: 'TLS_PSK_WITH_AES_128_CCM_8', ...CCM_8, keyExchange: 'psk' },
  { id: 0x00a8, name: 'TLS_PSK_WITH_AES_128_GCM_SHA256', ...GCM, keyExchange: 'psk' },
  { id: 0xc0a4, name: 'TLS_PSK_WITH_AES_128_CCM', ...CCM, keyExchange: 'psk' },
  { id: 0xc0ae, name: 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8', ...CCM_8, keyExchange: 'ecdhe_ecdsa' },
  { id: 0xc02b, name: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', ...GCM, keyExchange: 'ecdhe_ecdsa' },
  { id: 0xd003, name: 'TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256', ...CCM_8, keyExchange: 'ecdhe_psk' },
];

export function suiteByName(name: CipherSuiteName): CipherSuite {
  const s = CIPHER_SUITES.find((c) => c.name === name);
  if (!s) throw new Error(`unknown cipher suite ${name}`);
  return s;
}
