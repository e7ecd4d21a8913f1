/**
 * What a DTLS session shared through a session store carries besides its keys: this replica's fence, the
 * tag of its credential, the write block leased beyond the current one, and what the store already has.
 * The session holds it; the sharing (sharing.ts) reads and updates it.
 */

/** Sharing state of a session in a store (undefined on sessions of a process without one). */
export class ShareState {
  /** This replica's fence; 0 until the store confirmed the session. */
  fence = 0;
  /** Tag of the credential the session was made with (see `credentialTag` in sharing.ts). */
  credential = 0;
  /** Drawn when this replica created the session (tells its creation from another one's). */
  readonly token = (Math.random() * 0x1_0000_0000) >>> 0;
  /** A further leased write block [nextStart, nextEnd), or nextStart -1. */
  nextStart = -1;
  nextEnd = 0;
  /** Highest accepted client sequence number the store has. */
  storedTop = -1;
  /** A create or checkpoint of this session is in flight (one at a time). */
  busy = false;
  /** A lease of this session is in flight. */
  leasing = false;
}
