/** What a handshake in progress holds; dropped as a whole when the handshake ends. */
import type { HmacSha256, Sha256 } from './crypto/sha256.js';
import type { CipherSuite } from './crypto/cipher-suites.js';
import { Reassembler } from './reassembly.js';

export const enum Step {
  /** Flight 4 sent; waiting for ClientKeyExchange (flight 5). */
  AwaitKeyExchange,
  /** PSK identity being looked up in the registry. */
  Lookup,
  /** Keys derived; waiting for the client's Finished. */
  AwaitFinished,
}

export class Handshake {
  step = Step.AwaitKeyExchange;
  /** The flight the server retransmits (flight 4) and the offsets of its records. */
  flight: Buffer | null = null;
  flightRecords: readonly number[] = [];
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
  /** Epoch-1 records that arrived before the keys (the PSK lookup is asynchronous). */
  readonly early: Buffer[] = [];
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
    /** Source IP, for the per-address cap. */
    readonly ip: string,
    readonly startedAt: number,
    timeoutMs: number,
    maxMessageBytes: number,
  ) {
    this.timeoutMs = timeoutMs;
    this.serverSeq = helloSeq;
    this.messages = new Reassembler(helloSeq + 1, maxMessageBytes);
  }
}
