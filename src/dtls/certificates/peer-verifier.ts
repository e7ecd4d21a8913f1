/**
 * Verifies what a client presents in its Certificate message: an X.509 chain against the trust anchors
 * (issuer signatures, validity dates of every certificate on the path, CA and key usage of the issuers,
 * digital signature and client authentication use of the device certificate, a bounded number of
 * intermediates), or a raw public key (RFC 7250). Either must hold a P-256 key, the one the suites use.
 *
 * Verified chains are remembered by the hash of the whole chain until the earliest expiry on its path (a
 * bounded cache), so a device that reconnects costs no chain verification. The result keeps the public key
 * for CertificateVerify and the names the mapping rules need; nothing of it outlives the handshake.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { BoundedMap } from '../../collections/bounded-map.js';
import { certificateFields, KeyUsage } from './der.js';

export type CertificateFailure = 'bad_certificate' | 'unknown_ca' | 'certificate_expired';

export interface VerifiedPeer {
  readonly kind: 'x509' | 'rpk';
  readonly publicKey: KeyObject;
  /** Lower-case hex SHA-256 of the DER certificate (x509) or of the DER SubjectPublicKeyInfo (rpk). */
  readonly fingerprint: string;
  readonly cn?: string;
  readonly sanUris: readonly string[];
  readonly sanDns: readonly string[];
  /** When the verification stops holding (ms since the epoch): the earliest notAfter on the path. */
  readonly until: number;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

function sha256Hex(...parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Splits a PEM bundle into its certificates (DER). */
export function pemCertificates(pem: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g))
    out.push(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  return out;
}

export interface TrustAnchor {
  readonly cert: X509Certificate;
  /** DER subject Name, listed in CertificateRequest.certificate_authorities. */
  readonly subject: Buffer;
}

/** Parses a PEM bundle of CA certificates; throws naming what is wrong. */
export function readTrustAnchors(pem: string): TrustAnchor[] {
  const ders = pemCertificates(pem);
  if (ders.length === 0) throw new Error('no certificate in the trust anchor bundle');
  return ders.map((der, i) => {
    const fields = certificateFields(der);
    if (!fields) throw new Error(`trust anchor #${i + 1} is not a valid certificate`);
    return { cert: new X509Certificate(der), subject: fields.subjectDer };
  });
}

export class PeerVerifier {
  /** Verified chains by their hash; the oldest makes room when it is full. */
  private readonly cache: BoundedMap<string, VerifiedPeer>;

  constructor(
    private readonly anchors: readonly TrustAnchor[],
    private readonly maxIntermediates: number,
    private readonly maxCached: number,
    /** Called when the cache is full and its oldest entry makes room. */
    onCap: () => void,
  ) {
    this.cache = new BoundedMap({ maxEntries: maxCached, onCap: () => onCap() });
  }

  /** The DER subject Names of the anchors. */
  get authorities(): readonly Buffer[] {
    return this.anchors.map((a) => a.subject);
  }

  /** Verifies an X.509 chain (device certificate first) at time `now` (ms). */
  verifyChain(chain: readonly Buffer[], now: number): VerifiedPeer | CertificateFailure {
    if (chain.length === 0) return 'bad_certificate';
    const key = sha256Hex(...chain);
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.until >= now) return hit;
      this.cache.delete(key);
    }
    let result: VerifiedPeer | CertificateFailure;
    try {
      result = this.verifyUncached(chain, now);
    } catch {
      // A certificate that parses but whose key or signature OpenSSL cannot decode.
      result = 'bad_certificate';
    }
    if (typeof result !== 'string' && this.maxCached > 0) this.cache.set(key, result);
    return result;
  }

  /** Number of verified chains remembered. */
  get cached(): number {
    return this.cache.size;
  }

  private verifyUncached(chain: readonly Buffer[], now: number): VerifiedPeer | CertificateFailure {
    let certs: X509Certificate[];
    try {
      certs = chain.map((der) => new X509Certificate(der));
    } catch {
      return 'bad_certificate';
    }
    const leaf = certs[0];
    const fields = certificateFields(chain[0]);
    if (!fields || !isP256(leaf.publicKey)) return 'bad_certificate';
    if (fields.keyUsage !== undefined && !(fields.keyUsage & KeyUsage.digitalSignature))
      return 'bad_certificate';
    const eku = leaf.keyUsage;
    if (eku && eku.length > 0 && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EXTENDED_KEY_USAGE))
      return 'bad_certificate';
    // Walk up from the device certificate to an anchor through the certificates the client sent (in any
    // order, as clients do not always send them strictly in order, nor without repeats).
    const path: X509Certificate[] = [leaf];
    let current = leaf;
    let anchor: X509Certificate | undefined;
    for (;;) {
      const c = current;
      anchor = this.anchors.find(
        (a) => a.cert.fingerprint256 === c.fingerprint256 || issued(a.cert, c),
      )?.cert;
      if (anchor) break;
      if (path.length > this.maxIntermediates) return 'unknown_ca';
      const i = certs.findIndex(
        (x, j) => j > 0 && !path.includes(x) && issued(x, c) && canIssue(x, chain[j]),
      );
      if (i < 0) return 'unknown_ca';
      path.push(certs[i]);
      current = certs[i];
    }
    if (anchor.fingerprint256 !== current.fingerprint256) path.push(anchor);
    let until = Infinity;
    for (const c of path) {
      const from = Date.parse(c.validFrom);
      const to = Date.parse(c.validTo);
      if (!(from <= now && now <= to)) return 'certificate_expired';
      until = Math.min(until, to);
    }
    return {
      kind: 'x509',
      publicKey: leaf.publicKey,
      fingerprint: sha256Hex(chain[0]),
      cn: fields.cn,
      sanUris: fields.sanUris,
      sanDns: fields.sanDns,
      until,
    };
  }
}

/** Whether `issuer` issued `cert`: names match and its key verifies the signature. */
function issued(issuer: X509Certificate, cert: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** A CA certificate allowed to sign certificates (basicConstraints cA, keyCertSign when keyUsage is present). */
function canIssue(cert: X509Certificate, der: Buffer): boolean {
  if (!cert.ca) return false;
  const fields = certificateFields(der);
  return (
    fields !== undefined && (fields.keyUsage === undefined || (fields.keyUsage & KeyUsage.keyCertSign) !== 0)
  );
}

/**
 * A raw public key (DER SubjectPublicKeyInfo), accepted when it is a P-256 key. Its fingerprint is over the
 * bytes presented, which OpenSSL accepted as DER.
 */
export function verifyRawPublicKey(spki: Buffer): VerifiedPeer | CertificateFailure {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return 'bad_certificate';
  }
  if (!isP256(publicKey)) return 'bad_certificate';
  return {
    kind: 'rpk',
    publicKey,
    fingerprint: sha256Hex(spki),
    sanUris: [],
    sanDns: [],
    until: Infinity,
  };
}
