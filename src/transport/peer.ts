/**
 * A peer is the far end of a CoAP conversation as the layers above the transport see it: a session
 * identity, not an ip:port. NoSec peers are keyed by address; DTLS peers by their session, so a NAT rebinding
 * that moves a DTLS session (Connection ID) keeps its dedup, block-wise and downlink state.
 */
/** CoAP (NoSec, DTLS) or raw UDP datagrams (plain, DTLS). */
export type TransportName = 'coap' | 'coaps' | 'udp' | 'udp-dtls';

/** DTLS credential kinds: pre-shared key, raw public key (RFC 7250), X.509 certificate. */
export type Credential = 'psk' | 'rpk' | 'x509';

export interface Peer {
  /** Stable key for per-peer state: `udp:<ip>:<port>` for NoSec, `dtls:<session id>` for DTLS. */
  readonly key: string;
  readonly transport: TransportName;
  /** Current remote address and port (a DTLS peer's address moves with its Connection ID). */
  readonly address: string;
  readonly port: number;
  /** The identity the transport authenticated: the DTLS PSK identity. */
  readonly pskIdentity?: string;
  /** The kind of DTLS credential the device authenticated with. */
  readonly credential?: Credential;
  /** Lower-case hex SHA-256 of the device's X.509 certificate or raw public key (DER SubjectPublicKeyInfo). */
  readonly fingerprint?: string;
  /** The device the transport authenticated (DTLS: the device behind the PSK identity). */
  readonly deviceId?: string;
  /** Next Message ID for messages this side originates; owned by the CoAP endpoint. */
  nextMessageId: number;
  /** Sends one CoAP message (the transport encrypts it when it is a DTLS peer). */
  send(message: Buffer): void;
}
