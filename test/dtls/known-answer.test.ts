/**
 * Known-answer tests. The PRF vector is the published TLS 1.2 SHA-256 one (OpenSSL's TLS1-PRF gives the same
 * bytes). The handshake vectors are complete DTLS 1.2 PSK handshakes between OpenSSL's s_client and s_server
 * (an independent implementation), captured on the wire with the master secret from OpenSSL's key log: the
 * key schedule, the handshake hash rules, Finished and record protection must reproduce OpenSSL's bytes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ContentType, ExtensionType, HandshakeType } from '../../src/dtls/protocol/constants.js';
import { KEY_BLOCK_LENGTH, suiteByName } from '../../src/dtls/crypto/cipher-suites.js';
import {
  extendedMasterSecret,
  keyBlock,
  masterSecret,
  prf,
  pskPremasterSecret,
  verifyData,
} from '../../src/dtls/crypto/prf.js';
import {
  openRecord,
  sealRecord,
  Side,
  writeAdditionalData,
  writeCidAdditionalData,
} from '../../src/dtls/crypto/record-protection.js';
import { HandshakeHeader, parseClientHello, readHandshakeHeader } from '../../src/dtls/protocol/handshake.js';
import { readRecord, RecordHeader } from '../../src/dtls/protocol/record.js';
import type { CipherSuiteName } from '../../src/config/dtls.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('TLS 1.2 PRF with SHA-256', () => {
  it('reproduces the published test vector', () => {
    const out = prf(
      hex('9bbe436ba940f017b17652849a71db35'),
      'test label',
      hex('a0ba9f936cda311827a6f796ffd5198c'),
      100,
    );
    expect(out.toString('hex')).toBe(
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af' +
        '0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701' +
        '87347b66',
    );
  });

  it('hashes a secret longer than the SHA-256 block first (OpenSSL TLS1-PRF vector)', () => {
    // A PSK over 30 bytes makes a premaster secret over 64 bytes.
    const secret = Buffer.from(Array.from({ length: 100 }, (_, i) => (i * 7 + 3) & 0xff));
    const seed = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 13 + 1) & 0xff));
    expect(prf(secret, 'key expansion', seed, 40).toString('hex')).toBe(
      '444e2b9710af5f79e54be9558c6ab8e44243c2d760d958ff57553c2ed1b6eef658ef41a3034e03d2',
    );
  });

  it('builds the RFC 4279 PSK premaster secret', () => {
    expect(pskPremasterSecret(hex('0a0b0c')).toString('hex')).toBe('0003' + '000000' + '0003' + '0a0b0c');
  });
});

interface Capture {
  cipherSuite: CipherSuiteName;
  psk: string;
  identity: string;
  clientRandom: string;
  masterSecret: string;
  clientData: string;
  serverData: string;
  datagrams: { from: 'client' | 'server'; hex: string }[];
}

interface WireRecord {
  from: 'client' | 'server';
  buf: Buffer;
  rec: RecordHeader;
}

function records(c: Capture): WireRecord[] {
  const out: WireRecord[] = [];
  for (const d of c.datagrams) {
    const buf = hex(d.hex);
    for (let off = 0; off < buf.length;) {
      const rec = new RecordHeader();
      off = readRecord(buf, off, 0, rec);
      expect(off).toBeGreaterThan(0);
      out.push({ from: d.from, buf, rec });
    }
  }
  return out;
}

/** Epoch-0 handshake messages in order, as whole messages (OpenSSL sends them unfragmented). */
function plaintextMessages(rs: WireRecord[]): { from: string; type: number; seq: number; bytes: Buffer }[] {
  const h = new HandshakeHeader();
  const out: { from: string; type: number; seq: number; bytes: Buffer }[] = [];
  for (const { from, buf, rec } of rs) {
    if (rec.epoch !== 0 || rec.type !== ContentType.handshake) continue;
    const end = rec.bodyOffset + rec.bodyLength;
    for (let off = rec.bodyOffset; off < end;) {
      const start = off;
      off = readHandshakeHeader(buf, off, end, h);
      expect(h.fragmentLength).toBe(h.length);
      out.push({ from, type: h.type, seq: h.messageSeq, bytes: buf.subarray(start, off) });
    }
  }
  return out;
}

/** Extension types of a ServerHello message (with its 12-byte header). */
function serverExtensions(message: Buffer): number[] {
  let p = 12 + 2 + 32;
  p += 1 + message[p] + 2 + 1;
  const out: number[] = [];
  if (p >= message.length) return out;
  const end = p + 2 + message.readUInt16BE(p);
  for (p += 2; p < end; p += 4 + message.readUInt16BE(p + 2)) out.push(message.readUInt16BE(p));
  return out;
}

for (const name of ['ccm8', 'gcm', 'ccm-no-ems']) {
  const c = JSON.parse(
    readFileSync(new URL(`./fixtures/openssl-${name}.json`, import.meta.url), 'utf8'),
  ) as Capture;
  const suite = suiteByName(c.cipherSuite);

  describe(`${c.cipherSuite}: a handshake captured between OpenSSL client and server`, () => {
    const rs = records(c);
    const msgs = plaintextMessages(rs);
    // The handshake hash starts at the ClientHello that carries the cookie (RFC 6347 §4.2.1).
    const hello2 = msgs.findIndex((m) => m.type === HandshakeType.clientHello && m.seq === 1);
    const cke = msgs.findIndex((m) => m.type === HandshakeType.clientKeyExchange);
    const hashed = msgs.slice(hello2, cke + 1);
    const transcript = createHash('sha256');
    for (const m of hashed) transcript.update(m.bytes);
    const serverHello = msgs.find((m) => m.type === HandshakeType.serverHello)!.bytes;
    const clientRandom = hex(c.clientRandom);
    const serverRandom = serverHello.subarray(14, 46);
    const premaster = pskPremasterSecret(Buffer.from(c.psk, 'hex'));
    const protectedRecords = rs.filter((r) => r.rec.epoch === 1);
    const clientFinishedRecord = protectedRecords.find((r) => r.from === 'client')!;
    const serverFinishedRecord = protectedRecords.find((r) => r.from === 'server')!;

    const hello = parseClientHello(msgs[hello2].bytes.subarray(12));
    const ems = serverExtensions(serverHello).includes(ExtensionType.extendedMasterSecret);

    it('the ClientHello with the cookie parses and carries the client random of the key log', () => {
      expect(hello?.random.toString('hex')).toBe(c.clientRandom);
      expect(hello?.cookie.length).toBeGreaterThan(0);
      expect(hello?.cipherSuites).toContain(suite.id);
      expect(hello?.extensions.extendedMasterSecret).toBe(ems);
    });

    it(`derives OpenSSL’s ${ems ? 'extended ' : ''}master secret from the PSK`, () => {
      const sessionHash = transcript.copy().digest();
      const extended = extendedMasterSecret(premaster, sessionHash).toString('hex');
      const classic = masterSecret(premaster, clientRandom, serverRandom).toString('hex');
      expect(ems ? extended : classic).toBe(c.masterSecret);
      expect(ems ? classic : extended).not.toBe(c.masterSecret);
    });

    const master = hex(c.masterSecret);
    const keys = keyBlock(master, serverRandom, clientRandom, KEY_BLOCK_LENGTH);

    it('opens the client’s Finished with the key block and checks its verify_data', () => {
      const { buf, rec } = clientFinishedRecord;
      const finished = openRecord(suite, keys, 0, Side.Client, buf, rec);
      expect(finished).toBeDefined();
      expect(finished![0]).toBe(HandshakeType.finished);
      const expected = verifyData(master, 'client finished', transcript.copy().digest());
      expect(finished!.subarray(12).toString('hex')).toBe(expected.toString('hex'));
    });

    it('computes the server’s Finished over the handshake including the client’s Finished', () => {
      const clientFinished = openRecord(
        suite,
        keys,
        0,
        Side.Client,
        clientFinishedRecord.buf,
        clientFinishedRecord.rec,
      )!;
      const withClientFinished = transcript.copy().update(clientFinished);
      // OpenSSL's server sends a NewSessionTicket before its ChangeCipherSpec: it is hashed too.
      for (const m of msgs.slice(cke + 1)) withClientFinished.update(m.bytes);
      const { buf, rec } = serverFinishedRecord;
      const finished = openRecord(suite, keys, 0, Side.Server, buf, rec)!;
      expect(finished.subarray(12).toString('hex')).toBe(
        verifyData(master, 'server finished', withClientFinished.digest()).toString('hex'),
      );
    });

    it('opens application data both ways', () => {
      const data = protectedRecords.filter((r) => r.rec.type === ContentType.applicationData);
      const fromClient = data.find((r) => r.from === 'client')!;
      const fromServer = data.find((r) => r.from === 'server')!;
      expect(openRecord(suite, keys, 0, Side.Client, fromClient.buf, fromClient.rec)?.toString()).toBe(
        c.clientData,
      );
      expect(openRecord(suite, keys, 0, Side.Server, fromServer.buf, fromServer.rec)?.toString()).toBe(
        c.serverData,
      );
    });

    // OpenSSL uses epoch+sequence as the explicit nonce for CCM (as we do); for GCM it keeps its own counter.
    if (suite.ccm) {
      it('seals records byte-identical to OpenSSL’s', () => {
        for (const r of protectedRecords) {
          const side = r.from === 'client' ? Side.Client : Side.Server;
          const plain = openRecord(suite, keys, 0, side, r.buf, r.rec)!;
          const again = sealRecord(
            suite,
            keys,
            0,
            side,
            r.rec.type,
            r.rec.version,
            r.rec.epoch,
            r.rec.seq,
            '',
            plain,
          );
          const wire = r.buf.subarray(r.rec.start, r.rec.bodyOffset + r.rec.bodyLength);
          expect(again.toString('hex')).toBe(wire.toString('hex'));
        }
      });
    }

    it('rejects a record with one bit flipped anywhere, header included', () => {
      const { buf, rec } = protectedRecords.find((r) => r.rec.type === ContentType.applicationData)!;
      const end = rec.bodyOffset + rec.bodyLength;
      for (let i = rec.start; i < end; i++) {
        if (i === rec.start + 11 || i === rec.start + 12) continue; // length: would change the framing
        const copy = Buffer.from(buf);
        copy[i] ^= 0x10;
        const r = new RecordHeader();
        readRecord(copy, rec.start, 0, r);
        expect(openRecord(suite, keys, 0, Side.Client, copy, r), `byte ${i - rec.start}`).toBeUndefined();
        expect(openRecord(suite, keys, 0, Side.Server, copy, r), `byte ${i - rec.start}`).toBeUndefined();
      }
    });
  });
}

describe('record additional data', () => {
  it('lays out the DTLS 1.2 additional data: epoch | seq | type | version | length', () => {
    const aad = writeAdditionalData(Buffer.alloc(13), 23, 0xfefd, 1, 0x0102030405, 300);
    expect(aad.toString('hex')).toBe('0001' + '000102030405' + '17' + 'fefd' + '012c');
  });

  it('lays out the RFC 9146 §5 additional data of a tls12_cid record', () => {
    const cid = hex('a1b2c3d4e5f6').toString('latin1');
    const aad = writeCidAdditionalData(Buffer.alloc(23 + 6), 0xfefd, 1, 0x2a, cid, 0x0123);
    expect(aad.toString('hex')).toBe(
      'ffffffffffffffff' + // seq_num_placeholder
        '19' + // tls12_cid
        '06' + // cid_length
        '19' + // tls12_cid
        'fefd' + // DTLSCiphertext.version
        '0001' + // epoch
        '00000000002a' + // sequence_number
        'a1b2c3d4e5f6' + // cid
        '0123', // length_of_DTLSInnerPlaintext
    );
  });

  it('seals a tls12_cid record with inner type, and opens it back with its real type', () => {
    const suite = suiteByName('TLS_PSK_WITH_AES_128_CCM_8');
    const keys = Buffer.alloc(KEY_BLOCK_LENGTH, 7);
    const cid = 'abcdef';
    const record = sealRecord(
      suite,
      keys,
      0,
      Side.Client,
      ContentType.applicationData,
      0xfefd,
      1,
      9,
      cid,
      Buffer.from('ping'),
    );
    expect(record[0]).toBe(ContentType.tls12Cid);
    expect(record.subarray(11, 17).toString('latin1')).toBe(cid);
    // header 13 + cid 6, explicit nonce 8, inner plaintext 'ping' + type, tag 8
    expect(record.length).toBe(19 + 8 + 5 + 8);
    const rec = new RecordHeader();
    expect(readRecord(record, 0, 6, rec)).toBe(record.length);
    const plain = openRecord(suite, keys, 0, Side.Client, record, rec);
    expect(plain?.toString()).toBe('ping');
    expect(rec.type).toBe(ContentType.applicationData);
  });
});
