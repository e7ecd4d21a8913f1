/**
 * Whole DTLS datagrams as the server walks them (RFC 6347 §4.1, RFC 9146): record headers with and without
 * Connection IDs, the handshake header of each handshake record, and the body parsers of the messages a
 * client sends (hello, key exchanges, certificates, alerts). Nothing throws; every record and fragment lies
 * inside the datagram; headers re-encode byte for byte (record, unfragmented handshake, alert). Seeds are
 * datagrams of real handshakes: OpenSSL's s_client and the project's own client.
 */
import fc from 'fast-check';
import { encodeAlert, parseAlert } from '../../../src/dtls/protocol/alert.js';
import { ContentType, HandshakeType, RECORD_HEADER_BYTES } from '../../../src/dtls/protocol/constants.js';
import {
  HandshakeHeader,
  parseClientHello,
  readHandshakeHeader,
  writeHandshakeHeader,
} from '../../../src/dtls/protocol/handshake.js';
import { readRecord, RecordHeader, writeRecordHeader } from '../../../src/dtls/protocol/record.js';
import { hexFile, must, mutatedSeed, randomBytes, type FuzzTarget } from '../target.js';
import { checkClientHello } from './dtls-hello.js';
import { checkKeyExchange } from './dtls-key-exchange.js';

export interface DatagramInput {
  datagram: Buffer;
  /** The server's Connection ID length (0 when it issues none). */
  cidLength: number;
}

const rec = new RecordHeader();
const hh = new HandshakeHeader();

function checkHandshake(d: Buffer, end: number): void {
  const next = readHandshakeHeader(d, rec.bodyOffset, end, hh);
  if (next < 0) return;
  must(next === hh.bodyOffset + hh.fragmentLength && next <= end, 'the fragment lies inside the record');
  must(hh.fragmentOffset + hh.fragmentLength <= hh.length, 'the fragment lies inside its message');
  const fragment = d.subarray(hh.bodyOffset, next);
  if (hh.fragmentOffset !== 0 || hh.fragmentLength !== hh.length) return;
  const head = Buffer.alloc(12);
  writeHandshakeHeader(head, 0, hh.type, hh.messageSeq, hh.length);
  must(head.equals(d.subarray(rec.bodyOffset, hh.bodyOffset)), 'an unfragmented handshake header re-encodes');
  if (hh.type === HandshakeType.clientHello) {
    const hello = parseClientHello(fragment);
    if (hello) checkClientHello(fragment, hello);
  } else checkKeyExchange(fragment);
}

export const dtlsRecord: FuzzTarget<DatagramInput> = {
  name: 'dtls-record',
  description:
    'readRecord / readHandshakeHeader / body parsers over whole datagrams: in bounds, headers re-encode',
  shortRuns: 3000,
  seed: (file, name) => ({ datagram: hexFile(file), cidLength: /cid/.test(name) ? 1 : 0 }),
  arbitrary: (seeds) =>
    fc.record({
      datagram: fc.oneof(
        { weight: 5, arbitrary: mutatedSeed(seeds.map((s) => s.datagram)) },
        { weight: 1, arbitrary: randomBytes(400) },
      ),
      cidLength: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(8) }),
    }),
  check({ datagram: d, cidLength }) {
    let off = 0;
    while (off < d.length) {
      const next = readRecord(d, off, cidLength, rec);
      if (next < 0) break;
      must(next > off, 'the walk moves forward');
      const end = rec.bodyOffset + rec.bodyLength;
      must(next === end && end <= d.length, 'the record lies inside the datagram');
      must(
        rec.start === off && rec.cid.length === (rec.type === ContentType.tls12Cid ? cidLength : 0),
        'cid',
      );
      const head = Buffer.alloc(RECORD_HEADER_BYTES + rec.cid.length);
      writeRecordHeader(head, 0, rec.type, rec.version, rec.epoch, rec.seq, rec.cid, rec.bodyLength);
      must(head.equals(d.subarray(off, rec.bodyOffset)), 'the record header re-encodes');
      const body = d.subarray(rec.bodyOffset, end);
      if (rec.type === ContentType.handshake) checkHandshake(d, end);
      const alert = parseAlert(body);
      if (alert) must(encodeAlert(alert.level, alert.description).equals(body), 'an alert re-encodes');
      off = next;
    }
  },
};
