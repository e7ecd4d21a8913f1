/**
 * The TLS 1.2 key schedule with SHA-256 (RFC 5246 §5, §8.1, §6.3, §7.4.9), the PSK premaster secret
 * (RFC 4279 §2) and the extended master secret (RFC 7627 §4).
 */
import { createHmac } from 'node:crypto';
import { MASTER_SECRET_BYTES, VERIFY_DATA_BYTES } from '../constants.js';

/** P_SHA256(secret, seed) truncated to `length` bytes. */
export function pSha256(secret: Buffer, seed: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let a: Buffer = seed;
  let filled = 0;
  while (filled < length) {
    a = createHmac('sha256', secret).update(a).digest();
    const block = createHmac('sha256', secret).update(a).update(seed).digest();
    filled += block.copy(out, filled, 0, Math.min(block.length, length - filled));
  }
  return out;
}

/** PRF(secret, label, seed) = P_SHA256(secret, label + seed). */
export function prf(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  return pSha256(secret, Buffer.concat([Buffer.from(label, 'latin1'), seed]), length);
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
  return prf(premaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), MASTER_SECRET_BYTES);
}

/** The RFC 7627 master secret over the hash of the handshake up to and including ClientKeyExchange. */
export function extendedMasterSecret(premaster: Buffer, sessionHash: Buffer): Buffer {
  return prf(premaster, 'extended master secret', sessionHash, MASTER_SECRET_BYTES);
}

export function keyBlock(master: Buffer, serverRandom: Buffer, clientRandom: Buffer, length: number): Buffer {
  return prf(master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), length);
}

export type FinishedLabel = 'client finished' | 'server finished';

/** Finished.verify_data over the hash of the handshake messages. */
export function verifyData(master: Buffer, label: FinishedLabel, handshakeHash: Buffer): Buffer {
  return prf(master, label, handshakeHash, VERIFY_DATA_BYTES);
}
