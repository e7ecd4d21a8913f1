/**
 * Which device a verified client credential belongs to (`dtls.clientIdentity`):
 *
 * - a raw public key: the device whose `rpk` is that key;
 * - `fingerprint`: the device whose `x509.fingerprint` is the certificate's SHA-256;
 * - `cn`: the device whose `x509.subject` is the subject CN, else the device whose id (or thing) it is;
 * - `san-uri` / `san-dns`: the device whose id (or thing) is one of the certificate's SAN URIs / DNS names.
 *
 * A device that pins its certificate (`x509.fingerprint`, `x509.subject`) is reached only by a certificate
 * that matches the pins, whatever the rule.
 */
import type { ClientIdentityRule } from '../../config/dtls.js';
import type { CertificateLookup, CertificateOwner } from '../credential-lookup.js';
import type { VerifiedPeer } from './peer-verifier.js';

async function firstNamed(
  lookup: CertificateLookup,
  names: readonly string[],
): Promise<CertificateOwner | undefined> {
  for (const n of names) {
    const d = await lookup('name', n);
    if (d) return d;
  }
  return undefined;
}

function pinsMatch(d: CertificateOwner, peer: VerifiedPeer): boolean {
  const pins = d.x509;
  if (!pins) return true;
  return (
    (pins.fingerprint === undefined || pins.fingerprint === peer.fingerprint) &&
    (pins.subject === undefined || pins.subject === peer.cn)
  );
}

export async function deviceForPeer(
  lookup: CertificateLookup,
  rule: ClientIdentityRule,
  peer: VerifiedPeer,
): Promise<CertificateOwner | undefined> {
  if (peer.kind === 'rpk') return lookup('rpk-fingerprint', peer.fingerprint);
  let d: CertificateOwner | undefined;
  switch (rule) {
    case 'fingerprint':
      d = await lookup('x509-fingerprint', peer.fingerprint);
      break;
    case 'cn':
      if (peer.cn === undefined) return undefined;
      d = (await lookup('x509-subject', peer.cn)) ?? (await firstNamed(lookup, [peer.cn]));
      break;
    case 'san-uri':
      d = await firstNamed(lookup, peer.sanUris);
      break;
    case 'san-dns':
      d = await firstNamed(lookup, peer.sanDns);
      break;
  }
  return d && pinsMatch(d, peer) ? d : undefined;
}
