/**
 * The TLS 1.2 key schedule with SHA-256 (RFC 5246 §5, §8.1, §6.3, §7.4.9), the PSK premaster secret
 * (RFC 4279 §2), the ECDHE-PSK one (RFC 5489 §2) and the extended master secret (RFC 7627 §4).
 */
import { MASTER_SECRET_BYTES, VERIFY_DATA_BYTES } from '../protocol/constants.js';
import { HmacSha256 } from './sha256.js';

const labelBytes = new Map<string, Buffer>();

function label(text: string): Buffer {
  let bytes = labelBytes.get(text);
  if (!bytes) labelBytes.set(text, (bytes = Buffer.from(text, 'latin1')));
  return bytes;
}

const a = new Uint8Array(32);
const last = new Uint8Array(32);

/**
 * A secret used as a PRF key several times (the master secret: key block and both Finished), given as its
 * HMAC key so the pad states are computed once.
 */
export type PrfSecret = Buffer | HmacSha256;

/** P_SHA256(secret, label + seed) truncated to `length` bytes; the seed may come in parts. */
function pSha256(secret: PrfSecret, labelText: string, seed: readonly Uint8Array[], length: number): Buffer {
  const hmac = secret instanceof HmacSha256 ? secret : new HmacSha256(secret);
  const l = label(labelText);
  const out = Buffer.allocUnsafe(length);
  // A(1) = HMAC(secret, label + seed); each block is HMAC(secret, A(i) + label + seed); A(i+1) = HMAC(A(i)).
  let h = hmac.begin().update(l);
  for (const s of seed) h.update(s);
  hmac.end(a);
  for (let filled = 0; ;) {
    h = hmac.begin().update(a).update(l);
    for (const s of seed) h.update(s);
    if (length - filled >= 32) {
      hmac.end(out, filled);
      filled += 32;
    } else {
      hmac.end(last);
      for (; filled < length; filled++) out[filled] = last[filled & 31];
      last.fill(0);
    }
    if (filled === length) return out;
    hmac.begin().update(a);
    hmac.end(a);
  }
}

/** PRF(secret, label, seed) = P_SHA256(secret, label + seed). */
export function prf(secret: PrfSecret, label: string, seed: Buffer, length: number): Buffer {
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

/** ECDHE-PSK premaster (RFC 5489 §2): uint16 len(Z) | Z | uint16 len(psk) | psk, Z the ECDH shared secret. */
export function ecdhePskPremasterSecret(z: Buffer, psk: Buffer): Buffer {
  const out = Buffer.alloc(4 + z.length + psk.length);
  out.writeUInt16BE(z.length, 0);
  z.copy(out, 2);
  out.writeUInt16BE(psk.length, 2 + z.length);
  psk.copy(out, 4 + z.length);
  return out;
}

export function masterSecret(premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return pSha256(premaster, 'master secret', [clientRandom, serverRandom], MASTER_SECRET_BYTES);
}

/** The RFC 7627 master secret over the hash of the handshake up to and including ClientKeyExchange. */
export function extendedMasterSecret(premaster: Buffer, sessionHash: Buffer): Buffer {
  return prf(premaster, 'extended master secret', sessionHash, MASTER_SECRET_BYTES);
}

export function keyBlock(
  master: PrfSecret,
  serverRandom: Buffer,
  clientRandom: Buffer,
  length: number,
): Buffer {
  return pSha256(master, 'key expansion', [serverRandom, clientRandom], length);
}

export type FinishedLabel = 'client finished' | 'server finished';

/** Finished.verify_data over the hash of the handshake messages. */
export function verifyData(master: PrfSecret, label: FinishedLabel, handshakeHash: Buffer): Buffer {
  return prf(master, label, handshakeHash, VERIFY_DATA_BYTES);
}
