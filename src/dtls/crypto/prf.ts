/**
 * The TLS 1.2 key schedule with SHA-256 (RFC 5246 §5, §8.1, §6.3, §7.4.9), the PSK premaster secret
 * (RFC 4279 §2) and the extended master secret (RFC 7627 §4).
 */
import { MASTER_SECRET_BYTES, VERIFY_DATA_BYTES } from '../constants.js';
import { HmacSha256 } from './hmac.js';

/** P_SHA256(secret, label + seed) truncated to `length` bytes; the seed may come in parts. */
function pSha256(secret: Buffer, label: string, seed: readonly Buffer[], length: number): Buffer {
  const hmac = new HmacSha256(secret);
  const out = Buffer.allocUnsafe(length);
  let a = hmac.mac([label, ...seed]);
  let filled = 0;
  for (;;) {
    const block = hmac.mac([a, label, ...seed]);
    filled += block.copy(out, filled, 0, Math.min(block.length, length - filled));
    if (filled === length) return out;
    a = hmac.mac([a]);
  }
}

/** PRF(secret, label, seed) = P_SHA256(secret, label + seed). */
export function prf(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  return pSha256(secret, label, [seed], length);
}

/** uint16 N | N zero bytes | uint16 N | psk, for a PSK of N bytes. */
export function pskPremasterSecret(psk: Buffer): Buffer {
  const n = psk.length;
  const out = Buffer.alloc(4 + 2 * n);
  out.writeUInt16BE(n, 0);
  out.writeUInt16BE(n, 2 + n);
  psk.copy(out, 4 + n);
  return out;
}

export function masterSecret(premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return pSha256(premaster, 'master secret', [clientRandom, serverRandom], MASTER_SECRET_BYTES);
}

/** The RFC 7627 master secret over the hash of the handshake up to and including ClientKeyExchange. */
export function extendedMasterSecret(premaster: Buffer, sessionHash: Buffer): Buffer {
  return prf(premaster, 'extended master secret', sessionHash, MASTER_SECRET_BYTES);
}

export function keyBlock(master: Buffer, serverRandom: Buffer, clientRandom: Buffer, length: number): Buffer {
  return pSha256(master, 'key expansion', [serverRandom, clientRandom], length);
}

export type FinishedLabel = 'client finished' | 'server finished';

/** Finished.verify_data over the hash of the handshake messages. */
export function verifyData(master: Buffer, label: FinishedLabel, handshakeHash: Buffer): Buffer {
  return prf(master, label, handshakeHash, VERIFY_DATA_BYTES);
}
