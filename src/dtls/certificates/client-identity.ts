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
import type { Device } from '../../devices/device.js';
import type { DeviceRegistry } from '../../devices/registry.js';
import type { VerifiedPeer } from './peer-verifier.js';

type Lookup = Pick<DeviceRegistry, 'byCredential'>;

async function firstNamed(registry: Lookup, names: readonly string[]): Promise<Device | undefined> {
  for (const n of names) {
    const d = await registry.byCredential('name', n);
    if (d) return d;
  }
  return undefined;
}

function pinsMatch(d: Device, peer: VerifiedPeer): boolean {
  const pins = d.x509;
  if (!pins) return true;
  return (
    (pins.fingerprint === undefined || pins.fingerprint === peer.fingerprint) &&
    (pins.subject === undefined || pins.subject === peer.cn)
  );
}

export async function deviceForPeer(
  registry: Lookup,
  rule: ClientIdentityRule,
  peer: VerifiedPeer,
): Promise<Device | undefined> {
  if (peer.kind === 'rpk') return registry.byCredential('rpk-fingerprint', peer.fingerprint);
  let d: Device | undefined;
  switch (rule) {
    case 'fingerprint':
      d = await registry.byCredential('x509-fingerprint', peer.fingerprint);
      break;
    case 'cn':
      if (peer.cn === undefined) return undefined;
      d = (await registry.byCredential('x509-subject', peer.cn)) ?? (await firstNamed(registry, [peer.cn]));
      break;
    case 'san-uri':
      d = await firstNamed(registry, peer.sanUris);
      break;
    case 'san-dns':
      d = await firstNamed(registry, peer.sanDns);
      break;
  }
  return d && pinsMatch(d, peer) ? d : undefined;
}
