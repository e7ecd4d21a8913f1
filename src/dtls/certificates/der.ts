/**
 * The few X.509 fields the certificate checks need and node:crypto's X509Certificate does not expose as
 * values: the key usage bits, the subject common name and the subjectAltName URIs and DNS names (RFC 5280
 * §4.1, §4.2.1.3, §4.2.1.6). A bounds-checked DER walk over the certificate; anything malformed yields
 * undefined.
 */

interface Tlv {
  tag: number;
  /** Offset of the contents and of the byte after them. */
  start: number;
  end: number;
}

/** The TLV at `off` (definite lengths only, as DER requires), or undefined when it overruns `limit`. */
function tlv(buf: Buffer, off: number, limit: number): Tlv | undefined {
  if (off + 2 > limit) return undefined;
  const tag = buf[off];
  let len = buf[off + 1];
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
  }
  if (p + len > limit) return undefined;
  return { tag, start: p, end: p + len };
}

/** The children of a constructed TLV. */
function children(buf: Buffer, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end;) {
    const t = tlv(buf, p, parent.end);
    if (!t) return undefined;
    out.push(t);
    p = t.end;
  }
  return out;
}

const OID = 0x06;
const SEQUENCE = 0x30;
const SET = 0x31;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
const EXTENSIONS = 0xa3;
const OID_CN = '550403';
const OID_KEY_USAGE = '551d0f';
const OID_SUBJECT_ALT_NAME = '551d11';
/** GeneralName choices (context-specific, implicit): dNSName [2], uniformResourceIdentifier [6]. */
const SAN_DNS = 0x82;
const SAN_URI = 0x86;

/** Key usage bits (RFC 5280 §4.2.1.3), as the first two bytes of the BIT STRING, MSB first. */
export const KeyUsage = { digitalSignature: 0x8000, keyCertSign: 0x0400 } as const;

export interface CertificateFields {
  /** Subject common name (the last CN when there are several), or undefined. */
  readonly cn: string | undefined;
  readonly sanUris: readonly string[];
  readonly sanDns: readonly string[];
  /** Key usage bits, or undefined when the certificate has no keyUsage extension (any use allowed). */
  readonly keyUsage: number | undefined;
  /** The DER subject Name (what a CertificateRequest lists as a certificate authority). */
  readonly subjectDer: Buffer;
}

function hex(buf: Buffer, t: Tlv): string {
  return buf.toString('hex', t.start, t.end);
}

/** Reads the fields of a DER certificate; undefined when its structure is not that of a certificate. */
export function certificateFields(der: Buffer): CertificateFields | undefined {
  const cert = tlv(der, 0, der.length);
  if (!cert || cert.tag !== SEQUENCE) return undefined;
  const tbs = children(der, cert)?.[0];
  if (!tbs || tbs.tag !== SEQUENCE) return undefined;
  const parts = children(der, tbs);
  if (!parts) return undefined;
  // [0] version is optional; then serial, signature, issuer, validity, subject.
  const first = parts[0]?.tag === 0xa0 ? 1 : 0;
  const subject = parts[first + 4];
  if (!subject || subject.tag !== SEQUENCE) return undefined;
  const subjectDer = der.subarray(parts[first + 3].end, subject.end);
  let cn: string | undefined;
  for (const rdn of children(der, subject) ?? []) {
    if (rdn.tag !== SET) return undefined;
    for (const atv of children(der, rdn) ?? []) {
      const [type, value] = children(der, atv) ?? [];
      if (type?.tag === OID && value && hex(der, type) === OID_CN)
        cn = der.toString('utf8', value.start, value.end);
    }
  }
  const sanUris: string[] = [];
  const sanDns: string[] = [];
  let keyUsage: number | undefined;
  const extWrapper = parts.find((p) => p.tag === EXTENSIONS);
  const extList = extWrapper && children(der, extWrapper)?.[0];
  for (const ext of (extList && children(der, extList)) ?? []) {
    const fields = children(der, ext);
    if (!fields || fields.length < 2 || fields[0].tag !== OID) return undefined;
    const value = fields[fields.length - 1];
    if (value.tag !== OCTET_STRING) return undefined;
    const oid = hex(der, fields[0]);
    const inner = tlv(der, value.start, value.end);
    if (!inner) return undefined;
    if (oid === OID_KEY_USAGE) {
      if (inner.tag !== BIT_STRING || inner.end - inner.start < 2) return undefined;
      keyUsage = (der[inner.start + 1] << 8) | (inner.end - inner.start > 2 ? der[inner.start + 2] : 0);
    } else if (oid === OID_SUBJECT_ALT_NAME) {
      if (inner.tag !== SEQUENCE) return undefined;
      for (const name of children(der, inner) ?? []) {
        if (name.tag === SAN_URI) sanUris.push(der.toString('latin1', name.start, name.end));
        else if (name.tag === SAN_DNS) sanDns.push(der.toString('latin1', name.start, name.end));
      }
    }
  }
  return { cn, sanUris, sanDns, keyUsage, subjectDer };
}
