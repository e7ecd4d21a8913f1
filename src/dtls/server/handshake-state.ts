/** What a handshake in progress holds; dropped as a whole when the handshake ends. */
import type { KeyObject, Verify } from 'node:crypto';
import type { HmacSha256, Sha256 } from '../crypto/sha256.js';
import type { VerifiedPeer } from '../certificates/peer-verifier.js';
import type { PlaintextFlight } from './flights.js';
import type { CipherSuite } from '../crypto/cipher-suites.js';
import { Reassembler, type ReassemblyBudget } from './reassembly.js';

export const enum Step {
  /** Flight 4 sent (ECDHE-ECDSA); waiting for the client's Certificate. */
  AwaitCertificate,
  /** Flight 4 sent; waiting for ClientKeyExchange (flight 5). */
  AwaitKeyExchange,
  /** ECDHE-ECDSA: waiting for the client's CertificateVerify. */
  AwaitCertificateVerify,
  /** PSK identity, certificate or raw public key being looked up in the registry. */
  Lookup,
  /** Keys derived; waiting for the client's Finished. */
  AwaitFinished,
}

/** An epoch-1 record held during the PSK lookup, and the number of the datagram it came in. */
export interface EarlyRecord {
  readonly record: Buffer;
  readonly datagram: number;
}

export class Handshake {
  step: Step;
  /** The flight the server retransmits (flight 4): its datagrams and the offsets of their records. */
  flight: PlaintextFlight[] | null = null;
  timer: NodeJS.Timeout | null = null;
  timeoutMs: number;
  /**
   * Hash of the handshake up to and including ClientKeyExchange: the RFC 7627 session_hash, and what the
   * client's Finished covers.
   */
  sessionHash: Buffer | null = null;
  identity = '';
  unknownIdentity = false;
  deviceId: string | undefined = undefined;
  /** The master secret, as the HMAC key the PRF uses for the key block and both Finished messages. */
  master: HmacSha256 | null = null;
  /** What the client's Finished covers (the session hash, or up to CertificateVerify with certificates). */
  clientFinishedHash: Buffer | null = null;
  /** The server's ephemeral ECDH private key (ECDHE suites). */
  ecdh: KeyObject | null = null;
  /** The ECDHE-ECDSA transcript as the client's CertificateVerify signs it (up to ClientKeyExchange). */
  verifier: Verify | null = null;
  /** The certificate types negotiated (RFC 7250), ECDHE-ECDSA only. */
  clientCertificateType = 0;
  /** The client's verified certificate or raw public key, until CertificateVerify and the device lookup. */
  peer: VerifiedPeer | null = null;
  /** ECDHE-ECDSA premaster secret, held until the device is known. */
  premaster: Buffer | null = null;
  /** Epoch-1 records that arrived before the keys (the PSK lookup is asynchronous). */
  readonly early: EarlyRecord[] = [];
  /**
   * Number (the server's count) of the last datagram from the client's address that carried its
   * ClientKeyExchange: an epoch-1 record in that datagram is the client's own Finished of flight 5.
   */
  keyExchangeDatagram = -1;
  /** message_seq of the server's next message. */
  serverSeq: number;
  readonly messages: Reassembler;

  constructor(
    readonly clientRandom: Buffer,
    readonly serverRandom: Buffer,
    readonly suite: CipherSuite,
    readonly extendedMasterSecret: boolean,
    readonly transcript: Sha256,
    /** message_seq of the ClientHello that started it (a repeat means flight 4 was lost). */
    readonly helloSeq: number,
    /** What the per-address cap counts it under: the client's IPv4 address or IPv6 prefix. */
    readonly admission: string,
    readonly startedAt: number,
    timeoutMs: number,
    maxMessageBytes: number,
    budget: ReassemblyBudget,
  ) {
    this.timeoutMs = timeoutMs;
    this.step = suite.keyExchange === 'ecdhe_ecdsa' ? Step.AwaitCertificate : Step.AwaitKeyExchange;
    this.serverSeq = helloSeq;
    this.messages = new Reassembler(helloSeq + 1, maxMessageBytes, budget);
  }
}
