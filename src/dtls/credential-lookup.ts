/**
 * How the DTLS server learns whose a credential is, without knowing where devices are kept: two callbacks
 * it is given (as pion/dtls is given a PSKCallback), which the gateway answers from its device registry.
 * Both are asynchronous, so the registry may be remote; a lookup that rejects fails the handshake with
 * internal_error.
 */

/** The key of a PSK identity and the device it names. */
export interface PskKey {
  readonly key: Buffer;
  readonly deviceId: string;
  /**
   * The identity as the lookup holds it (equal to the one asked for): a session keeps this string rather
   * than its own copy of the one the client sent, which saves each idle session a string.
   */
  readonly identity?: string;
}

/** The key and device of a PSK identity; undefined when no device has that identity. */
export type PskLookup = (identity: string) => Promise<PskKey | undefined>;

/**
 * How a certificate handshake looks a device up: by the fingerprint of its X.509 certificate or raw public
 * key, by the certificate subject CN listed in the device file, or by a name (device id, else thing) the
 * certificate carries.
 */
export type CredentialLookup = 'x509-fingerprint' | 'x509-subject' | 'rpk-fingerprint' | 'name';

/** A device as a certificate handshake needs it: its id, its thing, and the certificate pins it lists. */
export interface CertificateOwner {
  readonly id: string;
  readonly thing: string;
  /** X.509 client certificate pins (lower-case hex fingerprint, subject CN). */
  readonly x509?: { readonly fingerprint?: string; readonly subject?: string };
}

/** The device a certificate or raw public key credential names, looked up one way; undefined when none. */
export type CertificateLookup = (
  kind: CredentialLookup,
  value: string,
) => Promise<CertificateOwner | undefined>;
