/**
 * The server's flights (RFC 6347 §4.2.4) as datagrams: flight 2 (HelloVerifyRequest, stateless), flight 4
 * (ServerHello … ServerHelloDone) and flight 6 (ChangeCipherSpec, Finished). Each handshake message travels
 * in a record of its own; a message that does not fit the datagram size or the client's record_size_limit
 * (a certificate chain) is fragmented (RFC 6347 §4.2.3), and the records are packed into as few datagrams
 * as fit the path MTU.
 */
import {
  ContentType,
  DTLS_1_0,
  DTLS_1_2,
  HANDSHAKE_HEADER_BYTES,
  HandshakeType,
  RECORD_HEADER_BYTES,
} from '../protocol/constants.js';
import { sealRecord, Side } from '../crypto/record-protection.js';
import type { CipherSuite } from '../crypto/cipher-suites.js';
import { handshakeMessage, helloVerifyRequestBody } from '../protocol/handshake.js';
import { writeRecordHeader, writeSeq48 } from '../protocol/record.js';

export interface PlaintextFlight {
  readonly datagram: Buffer;
  /** Offset of each record, to renumber them when the flight is sent again. */
  readonly records: readonly number[];
}

/** Packs epoch-0 records of `type`, one per fragment, numbered from `firstSeq`. */
export function packPlaintext(
  type: number,
  version: number,
  fragments: readonly Buffer[],
  firstSeq: number,
): PlaintextFlight {
  let size = 0;
  for (const f of fragments) size += RECORD_HEADER_BYTES + f.length;
  const datagram = Buffer.allocUnsafe(size);
  const records: number[] = [];
  let p = 0;
  fragments.forEach((f, i) => {
    records.push(p);
    p = writeRecordHeader(datagram, p, type, version, 0, firstSeq + i, '', f.length);
    p += f.copy(datagram, p);
  });
  return { datagram, records };
}

/** Smallest handshake fragment written, whatever the limits say (a path MTU below it is not plausible). */
const MIN_FRAGMENT = 64;

/**
 * Packs whole handshake messages (header and body, as hashed) into epoch-0 records numbered from
 * `firstSeq`: each message in a record of its own, fragmented when its record would exceed `maxRecord`
 * plaintext bytes or the datagram size, records packed into datagrams of at most `maxDatagram` bytes.
 */
export function packHandshakeFlight(
  messages: readonly Buffer[],
  firstSeq: number,
  maxDatagram: number,
  maxRecord: number,
): PlaintextFlight[] {
  const maxFragment = Math.max(
    MIN_FRAGMENT,
    Math.min(maxRecord, maxDatagram - RECORD_HEADER_BYTES) - HANDSHAKE_HEADER_BYTES,
  );
  const fragments: Buffer[] = [];
  for (const m of messages) {
    const length = m.length - HANDSHAKE_HEADER_BYTES;
    if (length <= maxFragment) {
      fragments.push(m);
      continue;
    }
    for (let off = 0; off < length; off += maxFragment) {
      const n = Math.min(maxFragment, length - off);
      const f = Buffer.allocUnsafe(HANDSHAKE_HEADER_BYTES + n);
      m.copy(f, 0, 0, 6);
      f.writeUIntBE(off, 6, 3);
      f.writeUIntBE(n, 9, 3);
      m.copy(f, HANDSHAKE_HEADER_BYTES, HANDSHAKE_HEADER_BYTES + off, HANDSHAKE_HEADER_BYTES + off + n);
      fragments.push(f);
    }
  }
  const flights: PlaintextFlight[] = [];
  let seq = firstSeq;
  for (let i = 0; i < fragments.length;) {
    let size = RECORD_HEADER_BYTES + fragments[i].length;
    let j = i + 1;
    while (j < fragments.length && size + RECORD_HEADER_BYTES + fragments[j].length <= maxDatagram)
      size += RECORD_HEADER_BYTES + fragments[j++].length;
    flights.push(packPlaintext(ContentType.handshake, DTLS_1_2, fragments.slice(i, j), seq));
    seq += j - i;
    i = j;
  }
  return flights;
}

/** Gives the records of a flight new sequence numbers from `firstSeq` (a retransmission is new records). */
export function renumber(flight: PlaintextFlight, firstSeq: number): void {
  flight.records.forEach((at, i) => writeSeq48(flight.datagram, at + 5, firstSeq + i));
}

/**
 * Flight 2: HelloVerifyRequest with the ClientHello's record sequence number and message_seq (RFC 6347
 * §4.2.1, §4.2.2) and server_version DTLS 1.0, which every DTLS client accepts.
 */
export function helloVerifyRequest(recordSeq: number, messageSeq: number, cookie: Buffer): Buffer {
  const msg = handshakeMessage(
    HandshakeType.helloVerifyRequest,
    messageSeq,
    helloVerifyRequestBody(DTLS_1_0, cookie),
  );
  return packPlaintext(ContentType.handshake, DTLS_1_0, [msg], recordSeq).datagram;
}

const CHANGE_CIPHER_SPEC = Buffer.from([1]);

/**
 * Flight 6: ChangeCipherSpec (epoch 0, `epoch0Seq`) and Finished (epoch 1, `epoch1Seq`), the Finished
 * protected with the new keys and carrying the client's CID when it asked for one.
 */
export function finishedFlight(
  suite: CipherSuite,
  keys: Buffer,
  at: number,
  peerCid: string,
  epoch0Seq: number,
  epoch1Seq: number,
  finished: Buffer,
): Buffer {
  const ccs = packPlaintext(ContentType.changeCipherSpec, DTLS_1_2, [CHANGE_CIPHER_SPEC], epoch0Seq).datagram;
  const fin = sealRecord(
    suite,
    keys,
    at,
    Side.Server,
    ContentType.handshake,
    DTLS_1_2,
    1,
    epoch1Seq,
    peerCid,
    finished,
  );
  return Buffer.concat([ccs, fin]);
}
