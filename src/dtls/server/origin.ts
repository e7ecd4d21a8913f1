/**
 * Where the records being handled came from: the source address and port of their datagram, its
 * session-table key (made once per datagram, when a record first needs it), the session bound to that
 * address (looked up again before each epoch-0 record, as a handshake may change it), and the datagram's
 * number. The server refills one origin for every datagram from its socket and another for records it feeds
 * back in (held during a PSK lookup or a take-over), so the record layer and the handshake pass one object
 * instead of five values, and nothing is allocated per datagram or record. An origin is valid only during
 * the call it is handed to: whatever outlives it copies the address and port.
 */
import type { DtlsSession } from './session.js';
import { addressKey, type AddressKey } from './session-table.js';

export class Origin {
  address = '';
  port = 0;
  /** Number of the datagram (counts every datagram received); 0 when not known. */
  datagram = 0;
  /** The session bound to the address: one in its handshake, or one without a Connection ID. */
  bound: DtlsSession | undefined = undefined;
  /** Records from it are being handled (a datagram handed in meanwhile needs an origin of its own). */
  busy = false;
  private key: AddressKey | undefined = undefined;

  /** Refills the origin for records from address:port, in the datagram numbered `datagram`. */
  set(address: string, port: number, datagram: number): void {
    this.address = address;
    this.port = port;
    this.datagram = datagram;
    this.bound = undefined;
    this.key = undefined;
  }

  /** The session-table key of the address and port. */
  get addressKey(): AddressKey {
    return (this.key ??= addressKey(this.address, this.port));
  }
}
