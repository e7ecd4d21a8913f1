/** The DTLS protocol codecs (src/dtls/protocol): record, handshake, extension and alert, with good and bad input. */
import { describe, expect, it } from 'vitest';
import { encodeAlert, endsSession, parseAlert } from '../../src/dtls/protocol/alert.js';
import { ContentType, ExtensionType, HandshakeType } from '../../src/dtls/protocol/constants.js';
import { encodeServerExtensions, parseClientExtensions } from '../../src/dtls/protocol/extensions.js';
import {
  HandshakeHeader,
  handshakeMessage,
  parseClientHello,
  parsePskClientKeyExchange,
  readHandshakeHeader,
  serverHelloBody,
} from '../../src/dtls/protocol/handshake.js';
import { ReadResult, readRecord, RecordHeader, writeRecordHeader } from '../../src/dtls/protocol/record.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function record(type: number, epoch: number, seq: number, body: Buffer, cid = ''): Buffer {
  const out = Buffer.alloc(13 + cid.length + body.length);
  body.copy(out, writeRecordHeader(out, 0, type, 0xfefd, epoch, seq, cid, body.length));
  return out;
}

function ext(type: number, data: Buffer): Buffer {
  const out = Buffer.alloc(4 + data.length);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, 4);
  return out;
}

function clientHelloBody(opts: {
  suites?: number[];
  cookie?: Buffer;
  extensions?: Buffer[];
  compression?: number[];
}) {
  const suites = opts.suites ?? [0xc0a8];
  const cookie = opts.cookie ?? Buffer.alloc(0);
  const compression = opts.compression ?? [0];
  const exts = opts.extensions ? Buffer.concat(opts.extensions) : undefined;
  const parts = [
    hex('fefd'),
    Buffer.alloc(32, 0x11),
    Buffer.from([0]),
    Buffer.from([cookie.length]),
    cookie,
    Buffer.from([0, 2 * suites.length]),
    Buffer.from(suites.flatMap((s) => [s >> 8, s & 0xff])),
    Buffer.from([compression.length, ...compression]),
  ];
  if (exts) parts.push(Buffer.from([exts.length >> 8, exts.length & 0xff]), exts);
  return Buffer.concat(parts);
}

describe('record header codec', () => {
  it('walks several records in one datagram', () => {
    const d = Buffer.concat([
      record(ContentType.handshake, 0, 5, Buffer.from('abc')),
      record(ContentType.changeCipherSpec, 0, 6, Buffer.from([1])),
      record(ContentType.applicationData, 1, 2 ** 40 + 7, Buffer.from('hello')),
    ]);
    const r = new RecordHeader();
    const seen: string[] = [];
    for (let off = 0; off < d.length;) {
      off = readRecord(d, off, 0, r);
      expect(off).toBeGreaterThan(0);
      seen.push(
        `${r.type}/${r.epoch}/${r.seq}/${d.toString('latin1', r.bodyOffset, r.bodyOffset + r.bodyLength)}`,
      );
    }
    expect(seen).toEqual(['22/0/5/abc', '20/0/6/\x01', `23/1/${2 ** 40 + 7}/hello`]);
  });

  it('reads the 48-bit sequence number exactly at its maximum', () => {
    const r = new RecordHeader();
    readRecord(record(23, 1, 2 ** 48 - 1, Buffer.alloc(1)), 0, 0, r);
    expect(r.seq).toBe(2 ** 48 - 1);
  });

  it('reads the Connection ID of a tls12_cid record with the configured length', () => {
    const d = record(ContentType.tls12Cid, 1, 9, Buffer.from('xyz'), '\x01\x02\x03\x04');
    const r = new RecordHeader();
    expect(readRecord(d, 0, 4, r)).toBe(d.length);
    expect(Buffer.from(r.cid, 'latin1').toString('hex')).toBe('01020304');
    expect(d.toString('latin1', r.bodyOffset, r.bodyOffset + r.bodyLength)).toBe('xyz');
  });

  it('refuses truncated headers, bodies longer than the datagram and non-DTLS versions', () => {
    const r = new RecordHeader();
    const ok = record(23, 1, 1, Buffer.from('hello'));
    expect(readRecord(ok.subarray(0, 12), 0, 0, r)).toBe(ReadResult.Truncated);
    expect(readRecord(ok.subarray(0, ok.length - 1), 0, 0, r)).toBe(ReadResult.Truncated);
    const tls = Buffer.from(ok);
    tls[1] = 0x03;
    expect(readRecord(tls, 0, 0, r)).toBe(ReadResult.NotDtls);
    const cid = record(ContentType.tls12Cid, 1, 1, Buffer.alloc(0), '\x01\x02');
    expect(readRecord(cid.subarray(0, 14), 0, 8, r)).toBe(ReadResult.Truncated);
  });
});

describe('handshake codec', () => {
  it('reads fragment headers and refuses fragments that overrun the message or the record', () => {
    const h = new HandshakeHeader();
    const msg = handshakeMessage(HandshakeType.finished, 3, Buffer.alloc(12, 9));
    expect(readHandshakeHeader(msg, 0, msg.length, h)).toBe(msg.length);
    expect([h.type, h.length, h.messageSeq, h.fragmentOffset, h.fragmentLength]).toEqual([20, 12, 3, 0, 12]);
    expect(readHandshakeHeader(msg, 0, msg.length - 1, h)).toBe(-1);
    const frag = Buffer.from(msg);
    frag.writeUIntBE(8, 6, 3); // offset 8 + length 12 > 12
    expect(readHandshakeHeader(frag, 0, frag.length, h)).toBe(-1);
    expect(readHandshakeHeader(msg, 0, 11, h)).toBe(-1);
  });

  it('parses a ClientHello with cookie, suites and extensions', () => {
    const hello = parseClientHello(
      clientHelloBody({
        suites: [0x00a8, 0xc0a8, 0x00ff],
        cookie: Buffer.alloc(16, 0xcc),
        extensions: [
          ext(0, Buffer.from('0005000003616263', 'hex')), // server_name: ignored
          ext(ExtensionType.extendedMasterSecret, Buffer.alloc(0)),
          ext(ExtensionType.renegotiationInfo, Buffer.from([0])),
          ext(ExtensionType.recordSizeLimit, Buffer.from([0, 128])),
          ext(ExtensionType.connectionId, Buffer.from([2, 0xaa, 0xbb])),
          ext(0x1234, Buffer.from('whatever')),
        ],
      }),
    );
    expect(hello).toBeDefined();
    expect(hello!.clientVersion).toBe(0xfefd);
    expect(hello!.cookie.length).toBe(16);
    expect(hello!.cipherSuites).toEqual([0x00a8, 0xc0a8, 0x00ff]);
    expect(hello!.extensions).toEqual({
      extendedMasterSecret: true,
      renegotiationInfo: Buffer.alloc(0),
      recordSizeLimit: 128,
      connectionId: Buffer.from([0xaa, 0xbb]),
    });
  });

  it('parses a ClientHello without extensions', () => {
    const hello = parseClientHello(clientHelloBody({}));
    expect(hello?.extensions).toEqual({
      extendedMasterSecret: false,
      renegotiationInfo: undefined,
      recordSizeLimit: undefined,
      connectionId: undefined,
    });
  });

  it('refuses malformed ClientHellos', () => {
    const good = clientHelloBody({ extensions: [ext(ExtensionType.extendedMasterSecret, Buffer.alloc(0))] });
    const withoutExtensions = 2 + 32 + 1 + 1 + 2 + 2 + 2;
    for (let n = 0; n < good.length; n++) {
      const parsed = parseClientHello(good.subarray(0, n));
      // Cut right before the extension block it is a valid ClientHello without extensions.
      if (n === withoutExtensions) expect(parsed?.extensions.extendedMasterSecret).toBe(false);
      else expect(parsed, `cut at ${n}`).toBeUndefined();
    }
    expect(parseClientHello(Buffer.concat([good, Buffer.from([0])]))).toBeUndefined();
    expect(parseClientHello(clientHelloBody({ suites: [] }))).toBeUndefined();
    expect(parseClientHello(clientHelloBody({ compression: [] }))).toBeUndefined();
    const odd = clientHelloBody({});
    odd.writeUInt16BE(3, 2 + 32 + 1 + 1);
    expect(parseClientHello(odd)).toBeUndefined();
  });

  it('reads the PSK identity of a ClientKeyExchange', () => {
    expect(parsePskClientKeyExchange(hex('0003616263'))?.toString()).toBe('abc');
    expect(parsePskClientKeyExchange(hex('00046162'))).toBeUndefined();
    expect(parsePskClientKeyExchange(hex('000161ff'))).toBeUndefined();
    expect(parsePskClientKeyExchange(hex('00'))).toBeUndefined();
  });

  it('writes a ServerHello with an empty session id and the extension block', () => {
    const exts = encodeServerExtensions({
      renegotiationInfo: true,
      extendedMasterSecret: true,
      recordSizeLimit: 16384,
      connectionId: '\x0a\x0b',
    });
    const body = serverHelloBody(0xfefd, Buffer.alloc(32, 7), 0xc0a8, exts);
    expect(body.toString('hex')).toBe(
      'fefd' +
        '07'.repeat(32) +
        '00' +
        'c0a8' +
        '00' +
        '0016' +
        'ff01000100' +
        '00170000' +
        '001c00024000' +
        '00360003020a0b',
    );
    expect(serverHelloBody(0xfefd, Buffer.alloc(32), 0xc0a8, Buffer.alloc(0)).length).toBe(38);
  });
});

describe('extension codec', () => {
  it('refuses duplicates, bad bodies and truncated blocks; ignores unknown ones', () => {
    const ems = ext(ExtensionType.extendedMasterSecret, Buffer.alloc(0));
    expect(parseClientExtensions(Buffer.concat([ems, ems]))).toBeUndefined();
    expect(parseClientExtensions(ext(ExtensionType.extendedMasterSecret, Buffer.from([0])))).toBeUndefined();
    expect(parseClientExtensions(ext(ExtensionType.recordSizeLimit, Buffer.from([0, 63])))).toBeUndefined();
    expect(
      parseClientExtensions(ext(ExtensionType.recordSizeLimit, Buffer.from([0, 64, 0]))),
    ).toBeUndefined();
    expect(parseClientExtensions(ext(ExtensionType.connectionId, Buffer.from([3, 1, 2])))).toBeUndefined();
    expect(parseClientExtensions(ext(ExtensionType.renegotiationInfo, Buffer.alloc(0)))).toBeUndefined();
    expect(parseClientExtensions(ems.subarray(0, 3))).toBeUndefined();
    expect(
      parseClientExtensions(Buffer.concat([ext(99, Buffer.alloc(5)), ext(0xfffe, Buffer.alloc(0))])),
    ).toEqual({
      extendedMasterSecret: false,
      renegotiationInfo: undefined,
      recordSizeLimit: undefined,
      connectionId: undefined,
    });
  });

  it('encodes an empty block when nothing is answered', () => {
    expect(
      encodeServerExtensions({
        renegotiationInfo: false,
        extendedMasterSecret: false,
        recordSizeLimit: undefined,
        connectionId: undefined,
      }).length,
    ).toBe(0);
    expect(
      encodeServerExtensions({
        renegotiationInfo: false,
        extendedMasterSecret: false,
        recordSizeLimit: undefined,
        connectionId: '',
      }).toString('hex'),
    ).toBe('0036000100');
  });
});

describe('alert codec', () => {
  it('round-trips and tells which alerts end a session', () => {
    expect(parseAlert(encodeAlert(1, 0))).toEqual({ level: 1, description: 0 });
    expect(endsSession({ level: 1, description: 0 })).toBe(true);
    expect(endsSession({ level: 2, description: 40 })).toBe(true);
    expect(endsSession({ level: 1, description: 100 })).toBe(false);
    expect(parseAlert(Buffer.from([3, 0]))).toBeUndefined();
    expect(parseAlert(Buffer.from([2]))).toBeUndefined();
    expect(parseAlert(Buffer.from([2, 0, 0]))).toBeUndefined();
  });
});
