/**
 * Handshake message codecs of the ECC key exchanges: ServerKeyExchange for ECDHE-ECDSA (RFC 8422 §5.4) and
 * ECDHE-PSK (RFC 5489 §2), CertificateRequest (RFC 5246 §7.4.4), the client's Certificate as X.509 chain or
 * raw public key (RFC 7250 §3), its ClientKeyExchange and CertificateVerify (RFC 5246 §7.4.8).
 */
import { ECDSA_SIGN, NAMED_CURVE, SECP256R1 } from './constants.js';
import { Cursor } from './cursor.js';

/** ServerECDHParams: named_curve secp256r1 and the server's ephemeral public point. */
export function ecdhParams(point: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + point.length);
  out[0] = NAMED_CURVE;
  out.writeUInt16BE(SECP256R1, 1);
  out[3] = point.length;
  point.copy(out, 4);
  return out;
}

/** ServerKeyExchange of ECDHE-ECDSA: params, then the signature with its SignatureAndHashAlgorithm. */
export function signedServerKeyExchangeBody(params: Buffer, algorithm: number, signature: Buffer): Buffer {
  const out = Buffer.allocUnsafe(params.length + 4 + signature.length);
  params.copy(out, 0);
  let p = out.writeUInt16BE(algorithm, params.length);
  p = out.writeUInt16BE(signature.length, p);
  signature.copy(out, p);
  return out;
}

/** ServerKeyExchange of ECDHE-PSK: the identity hint (possibly empty), then the params. */
export function ecdhePskServerKeyExchangeBody(hint: Buffer, params: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + hint.length + params.length);
  out.writeUInt16BE(hint.length, 0);
  hint.copy(out, 2);
  params.copy(out, 2 + hint.length);
  return out;
}

/**
 * CertificateRequest: ecdsa_sign, the signature algorithms accepted (in CertificateVerify and, per RFC 5246
 * §7.4.4, in the certificates of the chain) and the DER names of the CAs the server trusts (the client may
 * pick its certificate by them).
 */
export function certificateRequestBody(
  signatureAlgorithms: readonly number[],
  authorities: readonly Buffer[],
): Buffer {
  let names = 0;
  for (const a of authorities) names += 2 + a.length;
  const out = Buffer.allocUnsafe(2 + 2 + 2 * signatureAlgorithms.length + 2 + names);
  out[0] = 1;
  out[1] = ECDSA_SIGN;
  let p = out.writeUInt16BE(2 * signatureAlgorithms.length, 2);
  for (const a of signatureAlgorithms) p = out.writeUInt16BE(a, p);
  p = out.writeUInt16BE(names, p);
  for (const a of authorities) {
    p = out.writeUInt16BE(a.length, p);
    p += a.copy(out, p);
  }
  return out;
}

function u24vec(c: Cursor): Buffer {
  return c.view(c.u24());
}

/**
 * The client's X.509 Certificate: the certificates (DER, copies), device certificate first; an empty list
 * when it has none; undefined when malformed.
 */
export function parseCertificateList(body: Buffer): Buffer[] | undefined {
  const c = new Cursor(body, 0, body.length);
  const list = u24vec(c);
  if (!c.ok || c.remaining !== 0) return undefined;
  const l = new Cursor(list, 0, list.length);
  const out: Buffer[] = [];
  while (l.ok && l.remaining > 0) {
    const der = u24vec(l);
    if (!l.ok || der.length === 0) return undefined;
    out.push(Buffer.from(der));
  }
  return l.ok ? out : undefined;
}

/**
 * The client's raw public key Certificate (RFC 7250 §3): the DER SubjectPublicKeyInfo, empty when it sent
 * none, undefined when malformed. A key wrapped in a one-entry certificate list (as TLS 1.3 writes it) is
 * accepted too: an SPKI starts with a SEQUENCE tag, a list with a length byte.
 */
export function parseRawPublicKey(body: Buffer): Buffer | undefined {
  const c = new Cursor(body, 0, body.length);
  let spki = u24vec(c);
  if (!c.ok || c.remaining !== 0) return undefined;
  if (spki.length > 0 && spki[0] !== 0x30) {
    const inner = new Cursor(spki, 0, spki.length);
    spki = u24vec(inner);
    if (!inner.ok || inner.remaining !== 0) return undefined;
  }
  return Buffer.from(spki);
}

/** ClientKeyExchange of ECDHE-ECDSA: the client's public point (vec8), or undefined. */
export function parseEcdhClientKeyExchange(body: Buffer): Buffer | undefined {
  const c = new Cursor(body, 0, body.length);
  const point = c.vec8();
  return c.ok && c.remaining === 0 && point.length > 0 ? point : undefined;
}

/** ClientKeyExchange of ECDHE-PSK: psk_identity (vec16), then the client's point (vec8). */
export function parseEcdhePskClientKeyExchange(
  body: Buffer,
): { identity: Buffer; point: Buffer } | undefined {
  const c = new Cursor(body, 0, body.length);
  const identity = c.vec16();
  const point = c.vec8();
  return c.ok && c.remaining === 0 && point.length > 0 ? { identity, point } : undefined;
}

/** CertificateVerify: SignatureAndHashAlgorithm and the signature, or undefined. */
export function parseCertificateVerify(body: Buffer): { algorithm: number; signature: Buffer } | undefined {
  const c = new Cursor(body, 0, body.length);
  const algorithm = c.u16();
  const signature = c.vec16();
  return c.ok && c.remaining === 0 ? { algorithm, signature } : undefined;
}
