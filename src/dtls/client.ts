/**
 * A DTLS 1.2 client with PSK, ECDHE-PSK and ECDHE-ECDSA (an X.509 certificate or a raw public key), speaking
 * RFC 9146 Connection IDs: the simulator's devices, the tests' clients and the benchmarks' load. It
 * reassembles fragmented server flights, retransmits its flights on a doubling timer and when the server
 * repeats its flight, so it completes handshakes through a lossy path. It is socket-agnostic: hand it
 * datagrams (`receive`), it calls `send`.
 */
import {
  createPublicKey,
  createSign,
  timingSafeEqual,
  verify,
  X509Certificate,
  type KeyObject,
  type Sign,
} from 'node:crypto';
import { parseAlert } from './protocol/alert.js';
import {
  CertificateType,
  ContentType,
  DTLS_1_2,
  ECDSA_SHA256,
  ExtensionType,
  HANDSHAKE_HEADER_BYTES,
  HandshakeType,
  RANDOM_BYTES,
  SECP256R1,
  VERIFY_DATA_BYTES,
} from './protocol/constants.js';
import { Cursor, EMPTY } from './protocol/cursor.js';
import { ephemeralKey, sharedSecret } from './crypto/ecdh.js';
import { CIPHER_SUITES, KEY_BLOCK_LENGTH, type CipherSuite } from './crypto/cipher-suites.js';
import { random } from './crypto/random.js';
import {
  ecdhePskPremasterSecret,
  extendedMasterSecret,
  keyBlock,
  masterSecret,
  pskPremasterSecret,
  verifyData,
} from './crypto/prf.js';
import { openRecord, sealRecord, Side } from './crypto/record-protection.js';
import { HmacSha256, Sha256 } from './crypto/sha256.js';
import {
  HandshakeHeader,
  handshakeMessage,
  readHandshakeHeader,
  writeHandshakeHeader,
} from './protocol/handshake.js';
import { packHandshakeFlight } from './server/flights.js';
import { FragmentResult, Reassembler, ReassemblyBudget, type HandshakeMessage } from './server/reassembly.js';
import { readRecord, RecordHeader, writeRecordHeader } from './protocol/record.js';

/** The client's credential for the ECDHE-ECDSA suites. */
export interface ClientCertificate {
  /** P-256 private key. */
  key: KeyObject;
  /** DER certificates, device first; absent: send the key's raw public key (RFC 7250). */
  chain?: readonly Buffer[];
  /** Sign CertificateVerify with this key instead (to test that the server refuses it). */
  signWith?: KeyObject;
}

export interface DtlsClientOptions {
  /** PSK identity and key (PSK and ECDHE-PSK suites). */
  identity: string;
  key: Buffer;
  certificate?: ClientCertificate;
  /** Cipher suite ids offered, in order (default: CCM_8). */
  cipherSuites?: number[];
  /** Offer the connection_id extension with this CID (the CID the client wants to receive; may be empty). */
  cid?: Buffer;
  /** Offer the extended master secret (default true). */
  extendedMasterSecret?: boolean;
  /** Offer record_size_limit with this value. */
  recordSizeLimit?: number;
  /** First retransmission timeout (default 250 ms); doubles up to 8 tries. */
  retransmitMs?: number;
  /**
   * The first four bytes of the ClientHello random (gmt_unix_time in RFC 5246), as device stacks write a
   * clock there (seconds since boot, time()) or a constant; random by default.
   */
  helloTime?: number;
  /** Fragment the handshake messages of flight 5 into datagrams of at most this many bytes. */
  maxDatagramBytes?: number;
}

const ECC_SUITES = new Set([0xc0ae, 0xc02b, 0xd003]);

/** supported_groups, ec_point_formats, signature_algorithms; and the RFC 7250 types for a raw public key. */
function eccExtensions(rawPublicKey: boolean): Buffer {
  const parts = [
    Buffer.from([0, ExtensionType.supportedGroups, 0, 4, 0, 2, SECP256R1 >> 8, SECP256R1 & 0xff]),
    Buffer.from([0, ExtensionType.ecPointFormats, 0, 2, 1, 0]),
    Buffer.from([0, ExtensionType.signatureAlgorithms, 0, 4, 0, 2, ECDSA_SHA256 >> 8, ECDSA_SHA256 & 0xff]),
  ];
  if (rawPublicKey)
    for (const t of [ExtensionType.clientCertificateType, ExtensionType.serverCertificateType])
      parts.push(Buffer.from([0, t, 0, 2, 1, CertificateType.rawPublicKey]));
  return Buffer.concat(parts);
}

function vec24(parts: readonly Buffer[]): Buffer {
  const head = Buffer.alloc(3);
  head.writeUIntBE(
    parts.reduce((n, p) => n + p.length, 0),
    0,
    3,
  );
  return Buffer.concat([head, ...parts]);
}

interface ServerHello {
  random: Buffer;
  suite: number;
  extensions: Map<number, Buffer>;
}

function parseServerHello(body: Buffer): ServerHello | undefined {
  const c = new Cursor(body, 0, body.length);
  c.u16();
  const random = c.copy(RANDOM_BYTES);
  c.vec8();
  const suite = c.u16();
  c.u8();
  const extensions = new Map<number, Buffer>();
  if (c.remaining > 0) {
    const block = c.vec16();
    const e = new Cursor(block, 0, block.length);
    while (e.ok && e.remaining > 0) {
      const type = e.u16();
      extensions.set(type, Buffer.from(e.vec16()));
    }
    if (!e.ok) return undefined;
  }
  return c.ok ? { random, suite, extensions } : undefined;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

type Phase = 'hello' | 'cookie-hello' | 'key-exchange' | 'connected' | 'failed' | 'closed';

export class DtlsClientCore {
  phase: Phase = 'hello';
  /** Server's CID: put in the records the client sends ('' when none). */
  serverCid = '';
  suite: CipherSuite | undefined;
  /** Alerts received (description codes). */
  readonly alerts: number[] = [];
  /** Application data received, in order. */
  readonly received: Buffer[] = [];
  onData?: (data: Buffer) => void;
  handshakes = 0;

  private readonly random = random(RANDOM_BYTES);
  private readonly rec = new RecordHeader();
  private readonly hh = new HandshakeHeader();
  private epoch0Seq = 0;
  private epoch1Seq = 0;
  private messageSeq = 0;
  private transcript = new Sha256();
  private serverHello: ServerHello | undefined;
  private master: HmacSha256 | undefined;
  private keys: Buffer = EMPTY;
  private flight: (() => Buffer | Buffer[]) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timeoutMs: number;
  private tries = 0;
  private messages: Reassembler | undefined;
  private finishedMessage: Buffer = EMPTY;
  /** ECDHE: the server's public point and curve parameters; ECDHE-ECDSA: its key and the request. */
  private serverPoint: Buffer | undefined;
  private serverKey: KeyObject | undefined;
  private certificateRequested = false;
  /** ECDHE-ECDSA: the transcript as CertificateVerify signs it. */
  private signer: Sign | undefined;
  private readonly ecc: Buffer;
  private settle?: { resolve(): void; reject(err: Error): void };

  constructor(
    private readonly opts: DtlsClientOptions,
    private readonly send: (datagram: Buffer) => void,
  ) {
    this.timeoutMs = opts.retransmitMs ?? 250;
    if (opts.helloTime !== undefined) this.random.writeUInt32BE(opts.helloTime >>> 0, 0);
    this.ecc = (opts.cipherSuites ?? []).some((x) => ECC_SUITES.has(x))
      ? eccExtensions(opts.certificate !== undefined && opts.certificate.chain === undefined)
      : EMPTY;
  }

  /** Starts the handshake; resolves once the server's Finished is verified. */
  handshake(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.sendFlight(() => this.clientHello(EMPTY));
    return done;
  }

  /** An application data record carrying `data` (not sent). */
  record(data: Buffer, type: number = ContentType.applicationData): Buffer {
    return sealRecord(
      this.suite!,
      this.keys,
      0,
      Side.Client,
      type,
      DTLS_1_2,
      1,
      this.epoch1Seq++,
      this.serverCid,
      data,
    );
  }

  write(data: Buffer): void {
    this.send(this.record(data));
  }

  /** Sends close_notify and stops. */
  close(): void {
    if (this.phase === 'connected') this.send(this.record(Buffer.from([1, 0]), ContentType.alert));
    this.stop('closed');
  }

  stop(phase: Phase): void {
    this.phase = phase;
    clearTimeout(this.timer);
  }

  /** Gives up a handshake in progress: the promise `handshake` returned rejects with `reason`. */
  abort(reason: string): void {
    if (this.phase === 'connected' || this.phase === 'failed' || this.phase === 'closed') return;
    this.stop('failed');
    this.settle?.reject(new Error(reason));
  }

  receive(datagram: Buffer): void {
    const rec = this.rec;
    const cidLength = this.opts.cid?.length ?? 0;
    for (let off = 0; off < datagram.length;) {
      off = readRecord(datagram, off, cidLength, rec);
      if (off < 0) return;
      if (rec.epoch === 0) this.plaintext(datagram, rec);
      else this.protected(datagram, rec);
      if (this.phase === 'failed' || this.phase === 'closed') return;
    }
  }

  private plaintext(buf: Buffer, rec: RecordHeader): void {
    if (rec.type === ContentType.alert) {
      const a = parseAlert(buf.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength));
      if (a) this.fail(a.description);
      return;
    }
    if (rec.type !== ContentType.handshake) return;
    const h = this.hh;
    const end = rec.bodyOffset + rec.bodyLength;
    for (let off = rec.bodyOffset; off < end;) {
      off = readHandshakeHeader(buf, off, end, h);
      if (off < 0) return;
      if (h.type === HandshakeType.helloVerifyRequest && this.phase === 'hello') {
        const body = buf.subarray(h.bodyOffset, off);
        const c = new Cursor(body, 0, body.length);
        c.u16();
        const cookie = Buffer.from(c.vec8());
        this.messageSeq = 1;
        this.phase = 'cookie-hello';
        this.sendFlight(() => this.clientHello(cookie));
        return;
      }
      if (this.phase === 'key-exchange' && h.type === HandshakeType.serverHello) {
        // The server repeats flight 4: our flight 5 was lost.
        this.resend();
        return;
      }
      if (this.phase !== 'cookie-hello' || !this.messages) continue;
      // A fragment too far ahead (reordering) is dropped: the server sends the flight again.
      if (this.messages.add(h, buf) === FragmentResult.Refused) continue;
      for (let m = this.messages.take(); m && this.phase === 'cookie-hello'; m = this.messages.take())
        this.serverMessage(m);
    }
  }

  /** A whole message of the server's flight 4. */
  private serverMessage(m: HandshakeMessage): void {
    this.hash(handshakeMessage(m.type, m.messageSeq, m.body));
    const body = Buffer.from(m.body);
    const c = new Cursor(body, 0, body.length);
    switch (m.type) {
      case HandshakeType.serverHello:
        this.serverHello = parseServerHello(body);
        return;
      case HandshakeType.certificate: {
        // A raw public key is an SPKI (a SEQUENCE); an X.509 list starts with the first certificate's length.
        const all = c.view(c.u24());
        try {
          this.serverKey =
            all.length > 0 && all[0] === 0x30
              ? createPublicKey({ key: all, format: 'der', type: 'spki' })
              : new X509Certificate(all.subarray(3, 3 + all.readUIntBE(0, 3))).publicKey;
        } catch {
          this.fail(-1);
        }
        return;
      }
      case HandshakeType.serverKeyExchange: {
        const kx = this.negotiated()?.keyExchange;
        if (kx === 'ecdhe_psk') c.vec16();
        const paramsStart = c.pos;
        c.u8();
        c.u16();
        this.serverPoint = Buffer.from(c.vec8());
        if (kx === 'ecdhe_ecdsa') {
          const params = body.subarray(paramsStart, c.pos);
          const algorithm = c.u16();
          const signature = c.vec16();
          const ok =
            c.ok &&
            this.serverKey !== undefined &&
            algorithm === ECDSA_SHA256 &&
            verify(
              'sha256',
              Buffer.concat([this.random, (this.serverHello as ServerHello).random, params]),
              { key: this.serverKey, dsaEncoding: 'der' },
              signature,
            );
          if (!ok) this.fail(-1);
        }
        return;
      }
      case HandshakeType.certificateRequest:
        this.certificateRequested = true;
        return;
      case HandshakeType.serverHelloDone:
        this.keyExchange();
    }
  }

  private spki: Buffer | undefined;

  /** The DER SubjectPublicKeyInfo of the client's raw public key (computed once). */
  private ownPublicKey(cert: ClientCertificate): Buffer {
    this.spki ??= createPublicKey(cert.key).export({ format: 'der', type: 'spki' });
    return this.spki;
  }

  private negotiated(): CipherSuite | undefined {
    return CIPHER_SUITES.find((x) => x.id === this.serverHello?.suite);
  }

  private hash(message: Buffer): void {
    this.transcript.update(message);
    this.signer?.update(message);
  }

  private protected(buf: Buffer, rec: RecordHeader): void {
    if (!this.suite || !this.master || this.keys.length === 0) return;
    const content = openRecord(this.suite, this.keys, 0, Side.Server, buf, rec);
    if (!content) return;
    if (rec.type === ContentType.handshake && this.phase === 'key-exchange') {
      const expected = verifyData(
        this.master,
        'server finished',
        this.transcript.copy().update(this.finishedMessage).digest(),
      );
      const got = content.subarray(12);
      if (
        content[0] !== HandshakeType.finished ||
        got.length !== VERIFY_DATA_BYTES ||
        !timingSafeEqual(got, expected)
      ) {
        this.fail(-1);
        return;
      }
      this.stop('connected');
      this.handshakes++;
      this.settle?.resolve();
    } else if (rec.type === ContentType.applicationData && this.phase === 'connected') {
      this.received.push(content);
      this.onData?.(content);
    } else if (rec.type === ContentType.alert) {
      const a = parseAlert(content);
      if (a) {
        this.alerts.push(a.description);
        if (a.level === 2 || a.description === 0) this.stop('closed');
      }
    }
  }

  /** The ClientHello record, written in one buffer: record header, handshake header, body. */
  private clientHello(cookie: Buffer): Buffer {
    const suites = this.opts.cipherSuites ?? [0xc0a8];
    const ems = this.opts.extendedMasterSecret !== false;
    const rsl = this.opts.recordSizeLimit;
    const cid = this.opts.cid;
    const extLength = (ems ? 4 : 0) + 5 + (rsl ? 6 : 0) + (cid ? 5 + cid.length : 0) + this.ecc.length;
    const bodyLength = 2 + RANDOM_BYTES + 2 + cookie.length + 2 + 2 * suites.length + 2 + 2 + extLength;
    const out = Buffer.allocUnsafe(13 + HANDSHAKE_HEADER_BYTES + bodyLength);
    const message = writeRecordHeader(
      out,
      0,
      ContentType.handshake,
      DTLS_1_2,
      0,
      this.epoch0Seq++,
      '',
      HANDSHAKE_HEADER_BYTES + bodyLength,
    );
    let o = writeHandshakeHeader(out, message, HandshakeType.clientHello, this.messageSeq, bodyLength);
    o = out.writeUInt16BE(DTLS_1_2, o);
    o += this.random.copy(out, o);
    out[o++] = 0; // session_id
    out[o++] = cookie.length;
    o += cookie.copy(out, o);
    o = out.writeUInt16BE(2 * suites.length, o);
    for (const suite of suites) o = out.writeUInt16BE(suite, o);
    out[o++] = 1; // compression_methods: null
    out[o++] = 0;
    o = out.writeUInt16BE(extLength, o);
    if (ems) o = out.writeUInt32BE((ExtensionType.extendedMasterSecret << 16) >>> 0, o);
    o = out.writeUInt32BE(((ExtensionType.renegotiationInfo << 16) | 1) >>> 0, o);
    out[o++] = 0;
    if (rsl) {
      o = out.writeUInt32BE(((ExtensionType.recordSizeLimit << 16) | 2) >>> 0, o);
      o = out.writeUInt16BE(rsl, o);
    }
    if (cid) {
      o = out.writeUInt32BE(((ExtensionType.connectionId << 16) | (1 + cid.length)) >>> 0, o);
      out[o++] = cid.length;
      o += cid.copy(out, o);
    }
    o += this.ecc.copy(out, o);
    if (cookie.length > 0) {
      this.transcript = new Sha256().update(out, message, o);
      this.messages = new Reassembler(1, 65_536, new ReassemblyBudget(262_144));
      if (this.opts.certificate) this.signer = createSign('sha256').update(out.subarray(message, o));
    }
    return out;
  }

  private keyExchange(): void {
    const sh = this.serverHello;
    const suite = this.negotiated();
    if (!sh || !suite) {
      this.fail(-1);
      return;
    }
    this.suite = suite;
    const cid = sh.extensions.get(ExtensionType.connectionId);
    this.serverCid = cid ? cid.subarray(1).toString('latin1') : '';
    let seq = 2;
    const flight: Buffer[] = [];
    const add = (type: number, body: Buffer): void => {
      const m = handshakeMessage(type, seq++, body);
      this.hash(m);
      flight.push(m);
    };
    let premaster: Buffer;
    /** The RFC 7627 session hash: up to ClientKeyExchange (CertificateVerify comes after it). */
    let sessionHash: Buffer | undefined;
    const identity = Buffer.from(this.opts.identity, 'utf8');
    if (suite.keyExchange === 'psk') {
      add(HandshakeType.clientKeyExchange, Buffer.concat([u16(identity.length), identity]));
      premaster = pskPremasterSecret(this.opts.key);
    } else {
      const { privateKey, point } = ephemeralKey();
      const z = sharedSecret(privateKey, this.serverPoint ?? EMPTY);
      if (!z) {
        this.fail(-1);
        return;
      }
      const pointVec = Buffer.concat([Buffer.from([point.length]), point]);
      if (suite.keyExchange === 'ecdhe_psk') {
        add(HandshakeType.clientKeyExchange, Buffer.concat([u16(identity.length), identity, pointVec]));
        premaster = ecdhePskPremasterSecret(z, this.opts.key);
      } else {
        const cert = this.opts.certificate;
        if (!cert || !this.certificateRequested) {
          this.fail(-1);
          return;
        }
        add(
          HandshakeType.certificate,
          cert.chain ? vec24(cert.chain.map((der) => vec24([der]))) : vec24([this.ownPublicKey(cert)]),
        );
        add(HandshakeType.clientKeyExchange, pointVec);
        const signature = (this.signer as Sign).sign({ key: cert.signWith ?? cert.key, dsaEncoding: 'der' });
        this.signer = undefined;
        premaster = z;
        sessionHash = this.transcript.digest();
        add(
          HandshakeType.certificateVerify,
          Buffer.concat([u16(ECDSA_SHA256), u16(signature.length), signature]),
        );
      }
    }
    sessionHash ??= this.transcript.digest();
    this.master = new HmacSha256(
      sh.extensions.has(ExtensionType.extendedMasterSecret)
        ? extendedMasterSecret(premaster, sessionHash)
        : masterSecret(premaster, this.random, sh.random),
    );
    this.keys = keyBlock(this.master, sh.random, this.random, KEY_BLOCK_LENGTH);
    this.finishedMessage = handshakeMessage(
      HandshakeType.finished,
      seq,
      verifyData(this.master, 'client finished', this.transcript.digest()),
    );
    this.phase = 'key-exchange';
    this.tries = 0;
    this.timeoutMs = this.opts.retransmitMs ?? 250;
    const mtu = this.opts.maxDatagramBytes;
    this.sendFlight(() => {
      const tail = [
        this.plaintextRecord(ContentType.changeCipherSpec, Buffer.from([1])),
        this.record(this.finishedMessage, ContentType.handshake),
      ];
      if (mtu === undefined)
        return Buffer.concat([...flight.map((m) => this.plaintextRecord(ContentType.handshake, m)), ...tail]);
      // Fragmented to fit `mtu`, as a constrained device behind a small MTU sends a certificate chain.
      const packed = packHandshakeFlight(flight, this.epoch0Seq, mtu, mtu);
      for (const d of packed) this.epoch0Seq += d.records.length;
      return [...packed.map((d) => d.datagram), Buffer.concat(tail)];
    });
  }

  private plaintextRecord(type: number, body: Buffer): Buffer {
    const out = Buffer.alloc(13 + body.length);
    body.copy(out, writeRecordHeader(out, 0, type, DTLS_1_2, 0, this.epoch0Seq++, '', body.length));
    return out;
  }

  private sendFlight(build: () => Buffer | Buffer[]): void {
    this.flight = build;
    clearTimeout(this.timer);
    // Armed before sending: a peer wired back to back answers (and settles the flight) within send().
    this.timer = setTimeout(() => this.onTimer(), this.timeoutMs);
    this.timer.unref();
    const out = build();
    if (Buffer.isBuffer(out)) this.send(out);
    else for (const d of out) this.send(d);
  }

  private resend(): void {
    if (this.flight) this.sendFlight(this.flight);
  }

  private onTimer(): void {
    if (this.phase === 'connected' || this.phase === 'failed' || this.phase === 'closed') return;
    if (++this.tries > 8) {
      this.fail(-2);
      return;
    }
    this.timeoutMs *= 2;
    this.resend();
  }

  private fail(alert: number): void {
    this.alerts.push(alert);
    this.stop('failed');
    this.settle?.reject(
      new Error(alert === -2 ? 'handshake timed out' : `handshake failed (alert ${alert})`),
    );
  }
}
