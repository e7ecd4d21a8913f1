/**
 * The server's flights (RFC 6347 §4.2.4) as datagrams: flight 2 (HelloVerifyRequest, stateless), flight 4
 * (ServerHello, optional ServerKeyExchange, ServerHelloDone) and flight 6 (ChangeCipherSpec, Finished).
 * Each handshake message travels in a record of its own, all records of a flight in one datagram.
 */
import { ContentType, DTLS_1_0, DTLS_1_2, HandshakeType, RECORD_HEADER_BYTES } from './constants.js';
import { sealRecord, Side } from './crypto/record-protection.js';
import type { CipherSuite } from './crypto/cipher-suites.js';
import { handshakeMessage, helloVerifyRequestBody } from './handshake.js';
import { writeRecordHeader, writeSeq48 } from './record.js';

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
