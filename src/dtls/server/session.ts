/**
 * A DTLS session as the layers above see it (a Peer) and as the record layer keeps it. An idle established
 * session holds only what it needs: keys, sequence numbers, the replay window, its Connection IDs and its
 * address. The handshake's state lives in a separate object that is dropped when the handshake completes.
 */
import type { Credential, Peer } from '../../transport/peer.js';
import { ContentType, MAX_SEQUENCE } from '../protocol/constants.js';
import type { CipherSuite } from '../crypto/cipher-suites.js';
import type { Handshake } from './handshake-state.js';
import type { ReplayState } from './replay-window.js';
import type { ShareState } from './share-state.js';

/** What a session needs from the server that owns it. */
export interface SessionHost {
  /** Protects `content` of `type` in a record of the session and sends it. */
  sendRecord(session: DtlsSession, type: number, content: Buffer): void;
}

/**
 * The peer key of a session with a Connection ID: the same on every replica that serves the session (what
 * the layers above key deduplication and message ids by), as the Connection ID names the session fleet-wide.
 */
export function cidPeerKey(cid: string): string {
  return 'dtls:' + Buffer.from(cid, 'latin1').toString('hex');
}

export class DtlsSession implements Peer, ReplayState {
  /** Sessions are handed to the CoAP layer only once established. */
  deviceId: string | undefined = undefined;
  pskIdentity: string | undefined = undefined;
  credential: Credential | undefined = undefined;
  /** Fingerprint of the certificate or raw public key (hex); no certificate is kept after the handshake. */
  fingerprint: string | undefined = undefined;
  nextMessageId: number;
  /** Client's Connection ID: what the server puts in records it sends ('' sends plain records). */
  peerCid = '';
  suite: CipherSuite | undefined = undefined;
  /** Slot of the session's keys in the server's KeyStore; -1 before the keys exist and once ended. */
  keySlot = -1;
  /** Next epoch-1 sequence number the server writes. */
  writeSeq = 0;
  /**
   * First sequence number the server may not write with (the end of the block leased from a shared session
   * store; the 48-bit limit when the session is not shared), and where the next block is asked for.
   */
  writeLimit = MAX_SEQUENCE + 1;
  renewAt = -1;
  /** Sharing state when sessions are shared through a store; undefined otherwise. */
  share: ShareState | undefined = undefined;
  /** Replay window over the client's epoch-1 records. */
  top = -1;
  lo = 0;
  hi = 0;
  /** Largest plaintext the client accepts in one record (record_size_limit). */
  sendLimit = 16384;
  /** Seconds (server clock) of the last authenticated record. */
  lastActive = 0;
  /** Handshake in progress; null once established. */
  hs: Handshake | null = null;
  /**
   * While the client may still miss the server's last flight (until its first application data): the
   * message_seq of the server's Finished, else -1. The verify_data to resend sits in the key slot.
   */
  finishedSeq = -1;
  /** Next epoch-0 sequence number the server writes (for a ChangeCipherSpec sent again). */
  epoch0Seq = 0;
  /**
   * The client random and cookie of the ClientHello that made the session (latin1): a ClientHello with both
   * the same is a late duplicate of it, anything else a new handshake (a rebooted device may repeat the
   * first bytes of its random, which many stacks fill with a clock or a constant).
   */
  helloId = '';

  constructor(
    private readonly host: SessionHost,
    readonly key: string,
    public address: string,
    public port: number,
    /** Server's Connection ID: what the client puts in its records ('' when not negotiated). */
    readonly cid: string,
    messageId: number,
  ) {
    this.nextMessageId = messageId;
  }

  get transport(): 'coaps' {
    return 'coaps';
  }

  send(message: Buffer): void {
    this.host.sendRecord(this, ContentType.applicationData, message);
  }
}
