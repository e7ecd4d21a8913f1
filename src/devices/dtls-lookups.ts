/**
 * The DTLS server's credential lookups answered by a device registry: a PSK identity gives the key and id
 * of the device listed with it; a certificate or raw public key gives the device it names.
 */
import type { CertificateLookup, PskLookup } from '../dtls/credential-lookup.js';
import type { DeviceRegistry } from './registry.js';

export interface DtlsLookups {
  pskLookup: PskLookup;
  certificateLookup: CertificateLookup;
}

export function dtlsLookups(registry: Pick<DeviceRegistry, 'byPskIdentity' | 'byCredential'>): DtlsLookups {
  return {
    pskLookup: (identity) =>
      registry
        .byPskIdentity(identity)
        .then((d) =>
          d?.psk && d.psk.identity === identity
            ? { key: d.psk.key, deviceId: d.id, identity: d.psk.identity }
            : undefined,
        ),
    certificateLookup: (kind, value) => registry.byCredential(kind, value),
  };
}
