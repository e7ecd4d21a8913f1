/**
 * The server side of the DTLS 1.2 handshake as flights (RFC 6347 §4.2.4):
 *
 *   flight 1  ClientHello                        →
 *   flight 2                                     ←  HelloVerifyRequest (stateless cookie)
 *   flight 3  ClientHello + cookie               →
 *   flight 4                                     ←  ServerHello, [Certificate], [ServerKeyExchange],
 *                                                    [CertificateRequest], ServerHelloDone
 *   flight 5  [Certificate], ClientKeyExchange,  →  (PSK, certificate or raw public key looked up
 *             [CertificateVerify], CCS, Finished     asynchronously)
 *   flight 6                                     ←  ChangeCipherSpec, Finished
 *
 * PSK sends a ServerKeyExchange only with an identity hint; ECDHE-PSK sends the hint and its ephemeral key;
 * ECDHE-ECDSA sends its certificate (or raw public key), the signed ephemeral key and a CertificateRequest,
 * and the client proves its key with CertificateVerify. Flight 4 is fragmented to fit the path MTU and the
 * client's record_size_limit.
 *
 * No state exists before a ClientHello with a valid cookie. Flight 4 is retransmitted on a doubling timer
 * and when the ClientHello is repeated; flight 6 is sent again when the client repeats its Finished, until
 * the client's first application data shows it arrived. An unknown identity continues with a random key, so
 * it fails exactly like a wrong key: decrypt_error, no hint which. A certificate or raw public key that does
 * not verify or maps to no device ends the handshake with its own alert. After the handshake a session keeps
 * keys, device, credential kind and fingerprint: no certificate.
 */
import { createVerify, sign, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { ClientIdentityRule, DtlsConfig } from '../../config/dtls.js';
import type { CapReporter } from '../../ops/metrics.js';
import { KeyedLogLimit } from '../../ops/rate-limit-log.js';
import type { Logger } from '../../ops/logger.js';
import { admissionKey } from './admission.js';
import { encodeAlert } from '../protocol/alert.js';
import {
  AlertDescription,
  AlertLevel,
  CertificateType,
  ContentType,
  DTLS_1_2,
  ECDSA_SHA1,
  ECDSA_SHA256,
  HANDSHAKE_HEADER_BYTES,
  HandshakeType,
  MAX_PLAINTEXT,
  POINT_UNCOMPRESSED,
  RANDOM_BYTES,
  RENEGOTIATION_SCSV,
  SECP256R1,
  VERIFY_DATA_BYTES,
} from '../protocol/constants.js';
import type { DtlsCredentials } from '../certificates/credentials.js';
import {
  verifyRawPublicKey,
  type CertificateFailure,
  type VerifiedPeer,
} from '../certificates/peer-verifier.js';
import { deviceForPeer } from '../certificates/client-identity.js';
import type { CertificateLookup, CertificateOwner, PskKey, PskLookup } from '../credential-lookup.js';
import type { CertificateStatus, CertificateStatusAnswer } from '../certificates/aws-iot-status.js';
import {
  certificateRequestBody,
  ecdhePskServerKeyExchangeBody,
  ecdhParams,
  parseCertificateList,
  parseCertificateVerify,
  parseEcdhClientKeyExchange,
  parseEcdhePskClientKeyExchange,
  parseRawPublicKey,
  signedServerKeyExchangeBody,
} from '../protocol/ecc-messages.js';
import { EMPTY } from '../protocol/cursor.js';
import { ephemeralKey, sharedSecret } from '../crypto/ecdh.js';
import { KEY_BLOCK_LENGTH, suiteByName, type CipherSuite } from '../crypto/cipher-suites.js';
import {
  ecdhePskPremasterSecret,
  extendedMasterSecret,
  keyBlock,
  masterSecret,
  pskPremasterSecret,
  verifyData,
} from '../crypto/prf.js';
import { random, randomString } from '../crypto/random.js';
import { HmacSha256, Sha256 } from '../crypto/sha256.js';
import { CookieJar } from './cookie.js';
import { encodeServerExtensions } from '../protocol/extensions.js';
import {
  finishedFlight,
  helloVerifyRequest,
  packHandshakeFlight,
  packPlaintext,
  renumber,
} from './flights.js';
import {
  HandshakeHeader,
  handshakeMessage,
  parseClientHello,
  parsePskClientKeyExchange,
  pskServerKeyExchangeBody,
  readHandshakeHeader,
  serverHelloBody,
  writeHandshakeHeader,
  type ClientHello,
} from '../protocol/handshake.js';
import { Handshake, Step } from './handshake-state.js';
import type { KeyStore } from './key-store.js';
import type { DtlsStats, HandshakeFailure } from './metrics.js';
import { FragmentResult, ReassemblyBudget, type HandshakeMessage } from './reassembly.js';
import type { RecordHeader } from '../protocol/record.js';
import { cidPeerKey, DtlsSession, type SessionHost } from './session.js';
import type { Origin } from './origin.js';
import type { AddressKey, SessionTable } from './session-table.js';

/**
 * Epoch-1 records held while the PSK is looked up: only the client's Finished belongs there (under 100
 * bytes), so a few small ones.
 */
const MAX_EARLY_RECORDS = 4;
const MAX_EARLY_RECORD_BYTES = 512;

/**
 * The server numbers its messages on from the ClientHello's message_seq (RFC 6347 §4.2.2), a 16-bit field
 * that does not wrap: at most five in flight 4 (ServerHello … ServerHelloDone) and the Finished. A ClientHello
 * numbered past this leaves no room for them (a client starts at 0 and counts one up per HelloVerifyRequest).
 */
const MAX_HELLO_SEQ = 0xffff - 5;

/** What the handshake needs from the server. */
export interface HandshakeHost extends SessionHost {
  readonly table: SessionTable;
  readonly stats: DtlsStats;
  readonly caps: CapReporter;
  readonly log: Logger;
  /** The key and device of a PSK identity. */
  readonly pskLookup: PskLookup;
  /** The device a certificate or raw public key names. */
  readonly certificateLookup: CertificateLookup;
  /** The server's own certificate and key, and the verifier of client certificates. */
  readonly credentials: DtlsCredentials;
  /** An authority asked about X.509 device certificates after they verify and map (AWS IoT Core mode). */
  readonly certificateStatus: CertificateStatus | undefined;
  transmit(datagram: Buffer, address: string, port: number): void;
  /**
   * A new ClientHello with a valid cookie came from the address the established session `s` is bound to:
   * make way for the new handshake.
   */
  unbind(s: DtlsSession, addressKey: AddressKey): void;
  /**
   * The handshake completed: puts the session in service; with shared sessions, settles (never rejects) once
   * the session was stored, or storing it failed.
   */
  establish(s: DtlsSession): Promise<void> | undefined;
  /** Feeds an epoch-1 record held during the PSK lookup (from datagram number `datagram`) back in. */
  replay(s: DtlsSession, record: Buffer, datagram: number): void;
  /** Number of the datagram being handled (counts every datagram received). */
  readonly datagrams: number;
  /** Forgets a session: wipes its keys and removes it from the table. */
  discard(s: DtlsSession): void;
  readonly keys: KeyStore;
}

const hashHeader = Buffer.alloc(HANDSHAKE_HEADER_BYTES);

/** Adds a message to the handshake hash, with its header written as if unfragmented (RFC 6347 §4.2.6). */
function hashMessage(hs: Handshake, m: HandshakeMessage): void {
  writeHandshakeHeader(hashHeader, 0, m.type, m.messageSeq, m.body.length);
  hs.transcript.update(hashHeader).update(m.body);
  hs.verifier?.update(hashHeader).update(m.body);
}

/** Adds whole messages (header and body) to the handshake hash. */
function hashWhole(hs: Handshake, message: Buffer): void {
  hs.transcript.update(message);
  hs.verifier?.update(message);
}

/** What the server chose from a ClientHello. */
interface Offer {
  readonly suite: CipherSuite;
  /** Certificate types (RFC 7250) for ECDHE-ECDSA; what to answer when the client sent the extensions. */
  readonly serverType: number;
  readonly clientType: number;
}

/** The first type of the client's list the server supports; X.509 when the client sent no list. */
function pickType(offered: Buffer | undefined, supported: readonly number[]): number | undefined {
  if (offered === undefined)
    return supported.includes(CertificateType.x509) ? CertificateType.x509 : undefined;
  for (const t of offered) if (supported.includes(t)) return t;
  return undefined;
}

/** Alerts and metric reasons for certificates that do not verify. */
const CERTIFICATE_ALERTS: Record<CertificateFailure, number> = {
  bad_certificate: AlertDescription.badCertificate,
  unknown_ca: AlertDescription.unknownCa,
  certificate_expired: AlertDescription.certificateExpired,
};

/**
 * Signature algorithms a CertificateRequest names: ECDSA-SHA256, the one CertificateVerify may use with a
 * P-256 key, and RSA with SHA-256/384, which CAs (AWS IoT Core's among them) sign device certificates with.
 */
const CERTIFICATE_SIGNATURES = [ECDSA_SHA256, 0x0401, 0x0501];

/** Alerts for certificates the status authority refuses. */
const STATUS_ALERTS: Record<Exclude<CertificateStatusAnswer, 'active'>, number> = {
  revoked: AlertDescription.certificateRevoked,
  not_attached: AlertDescription.accessDenied,
  not_registered: AlertDescription.certificateUnknown,
};

/** Failures that refuse a device for its credentials, logged at info, and how the log line says it. */
const REFUSALS: Partial<Record<HandshakeFailure, string>> = {
  unknown_identity: 'unknown PSK identity',
  bad_key: 'wrong key for this PSK identity',
  unknown_ca: 'certificate from no trusted CA',
  certificate_expired: 'certificate outside its validity dates',
  bad_certificate: 'certificate not usable (malformed, not P-256, not for clients)',
  unmapped: 'certificate names no device',
  unknown_key: 'raw public key of no device',
  bad_signature: 'CertificateVerify does not verify with the certificate’s key',
  revoked: 'certificate not ACTIVE in AWS IoT Core',
  not_attached: 'certificate not attached to the device’s thing in AWS IoT Core',
  not_registered: 'certificate unknown to AWS IoT Core',
};

/** IP and UDP header bytes the path MTU loses. */
function ipOverhead(address: string): number {
  return address.includes(':') ? 48 : 28;
}

const helloIdScratch = Buffer.alloc(RANDOM_BYTES + 255);

/**
 * What tells one ClientHello from another: its whole client random and its cookie, as one flat string (a
 * session without a Connection ID keeps it while it lives).
 */
function helloIdOf(hello: ClientHello): string {
  hello.random.copy(helloIdScratch, 0);
  const n = RANDOM_BYTES + hello.cookie.copy(helloIdScratch, RANDOM_BYTES);
  return helloIdScratch.toString('latin1', 0, n);
}

function onRetransmitTimer(h: Handshaker, s: DtlsSession): void {
  h.retransmitTimer(s);
}

export class Handshaker {
  private readonly suites: readonly CipherSuite[];
  private readonly cookies: CookieJar;
  private readonly hint: Buffer;
  private readonly identityRule: ClientIdentityRule;
  /** Sessions in their handshake. */
  private readonly inProgress = new Set<DtlsSession>();
  /** Handshakes in progress by admission key (IPv4 address, IPv6 prefix). */
  private readonly perAddress = new Map<string, number>();
  private readonly header = new HandshakeHeader();
  /** Refused identities are logged once a minute each at most. */
  private readonly refusalLog: KeyedLogLimit;
  private readonly reassembly: ReassemblyBudget;

  constructor(
    private readonly host: HandshakeHost,
    private readonly config: DtlsConfig,
  ) {
    this.suites = config.cipherSuites.map(suiteByName);
    this.cookies = new CookieJar(config.cookieSecretRotationMs);
    this.hint = Buffer.from(config.identityHint, 'utf8');
    this.refusalLog = new KeyedLogLimit(60_000, 10_000, () => host.caps.hit('log_limit_keys'));
    this.reassembly = new ReassemblyBudget(config.maxReassemblyBytes, () =>
      this.host.caps.hit('dtls_reassembly_bytes'),
    );
    this.identityRule = config.clientIdentity;
  }

  get active(): number {
    return this.inProgress.size;
  }

  /** Bytes held by all handshakes for fragmented or out-of-order messages. */
  get reassemblyBytes(): number {
    return this.reassembly.used;
  }

  /**
   * An epoch-0 handshake record from `origin`. Its `bound` is the session bound to that address, if any: one
   * in its handshake, or an established one the client may not have seen the last flight of.
   */
  plaintextRecord(buf: Buffer, rec: RecordHeader, origin: Origin): void {
    const h = this.header;
    const bound = origin.bound;
    const end = rec.bodyOffset + rec.bodyLength;
    let off = rec.bodyOffset;
    while (off < end) {
      const start = off;
      off = readHandshakeHeader(buf, off, end, h);
      if (off < 0) {
        this.host.stats.recordsDropped.malformed++;
        return;
      }
      if (h.type === HandshakeType.clientHello) {
        this.clientHello(buf, start, rec, origin);
        return;
      }
      if (!bound) {
        this.host.stats.recordsDropped.no_session++;
        continue;
      }
      const hs = bound.hs;
      if (!hs || h.type === HandshakeType.finished) {
        // Flight 5 repeated after the handshake completed is answered when its (protected) Finished
        // arrives; anything else in epoch 0 is out of place.
        if (!hs && bound.finishedSeq >= 0) continue;
        this.host.stats.recordsDropped.unexpected++;
        continue;
      }
      // Flight 5 (first or repeated): an epoch-1 record later in this datagram is the client's Finished.
      if (h.type === HandshakeType.clientKeyExchange) hs.keyExchangeDatagram = this.host.datagrams;
      this.fragment(bound, hs, buf);
      if (bound.hs !== hs) return;
    }
  }

  /** Handshake content of an authenticated epoch-1 record of a session in its handshake. */
  protectedHandshake(s: DtlsSession, hs: Handshake, content: Buffer): void {
    const h = this.header;
    let off = 0;
    while (off < content.length) {
      off = readHandshakeHeader(content, off, content.length, h);
      if (off < 0 || h.type !== HandshakeType.finished) {
        this.fail(s, hs, 'bad_message', AlertDescription.unexpectedMessage);
        return;
      }
      this.fragment(s, hs, content);
      if (s.hs !== hs) return;
    }
  }

  /**
   * Handshake content of an authenticated record of an established session: the client repeating its
   * Finished (it missed flight 6), or a ClientHello asking to renegotiate, which is refused.
   */
  afterHandshake(s: DtlsSession, content: Buffer): void {
    const h = this.header;
    if (readHandshakeHeader(content, 0, content.length, h) < 0) {
      this.host.stats.recordsDropped.malformed++;
    } else if (h.type === HandshakeType.finished && s.finishedSeq >= 0) {
      this.resendFinished(s);
    } else if (h.type === HandshakeType.clientHello) {
      this.host.sendRecord(
        s,
        ContentType.alert,
        encodeAlert(AlertLevel.warning, AlertDescription.noRenegotiation),
      );
    } else {
      this.host.stats.recordsDropped.unexpected++;
    }
  }

  /**
   * An epoch-1 record of a session whose keys are not known yet (PSK lookup in progress). When the few
   * places are taken, the record that came with the ClientKeyExchange (the client's Finished) still gets
   * one: records from elsewhere cannot crowd it out.
   */
  early(hs: Handshake, buf: Buffer, rec: RecordHeader): void {
    const early = hs.early;
    const datagram = this.host.datagrams;
    if (rec.bodyLength > MAX_EARLY_RECORD_BYTES) {
      this.host.stats.recordsDropped.handshake_cap++;
      return;
    }
    if (early.length >= MAX_EARLY_RECORDS) {
      const other =
        datagram === hs.keyExchangeDatagram ? early.findIndex((r) => r.datagram !== datagram) : -1;
      this.host.stats.recordsDropped.handshake_cap++;
      if (other < 0) return;
      early.splice(other, 1);
    }
    early.push({ record: Buffer.from(buf.subarray(rec.start, rec.bodyOffset + rec.bodyLength)), datagram });
  }

  /**
   * An epoch-1 record of a session in its handshake did not authenticate. If it came in the datagram that
   * carried the client's ClientKeyExchange, it is the client's Finished failing under the keys of this
   * handshake: wrong key or unknown identity, answered at once with decrypt_error. Anything else is dropped
   * silently (RFC 6347 §4.1.2.7): whoever saw the Connection ID in the ServerHello could send it from
   * anywhere, and must not be able to end the handshake.
   */
  unauthenticated(s: DtlsSession, hs: Handshake, datagram: number): void {
    if (datagram === hs.keyExchangeDatagram) this.badFinished(s, hs);
    else this.host.stats.recordsDropped.handshake_bad_mac++;
  }

  /** The client aborted its handshake with an alert. */
  peerAlert(s: DtlsSession, hs: Handshake): void {
    this.fail(s, hs, 'peer_alert');
  }

  /** Abandons the handshakes of a device (its key changed) or all of them (shutdown). */
  abandon(reason: HandshakeFailure, deviceId?: string): number {
    let n = 0;
    for (const s of this.inProgress) {
      const hs = s.hs;
      if (hs && (deviceId === undefined || hs.deviceId === deviceId)) {
        this.fail(s, hs, reason);
        n++;
      }
    }
    return n;
  }

  /** Drops handshakes older than the handshake timeout. */
  sweep(now: number): void {
    for (const s of this.inProgress) {
      const hs = s.hs;
      if (hs && now - hs.startedAt > this.config.handshakeTimeoutMs) this.fail(s, hs, 'timeout');
    }
  }

  retransmitTimer(s: DtlsSession): void {
    const hs = s.hs;
    if (!hs || !hs.flight) return;
    hs.timer = null;
    if (hs.timeoutMs >= this.config.retransmitMaxMs) {
      this.fail(s, hs, 'timeout');
      return;
    }
    hs.timeoutMs = Math.min(2 * hs.timeoutMs, this.config.retransmitMaxMs);
    this.resendFlight(s, hs);
  }

  private clientHello(buf: Buffer, start: number, rec: RecordHeader, origin: Origin): void {
    const h = this.header;
    const { address, port, bound } = origin;
    const stats = this.host.stats;
    if (h.fragmentOffset !== 0 || h.fragmentLength !== h.length || h.messageSeq > MAX_HELLO_SEQ) {
      stats.recordsDropped.bad_hello++;
      return;
    }
    const end = h.bodyOffset + h.length;
    const hello = parseClientHello(buf.subarray(h.bodyOffset, end));
    if (!hello) {
      stats.recordsDropped.bad_hello++;
      return;
    }
    if (!this.cookies.verify(address, port, hello)) {
      const hvr = helloVerifyRequest(rec.seq, h.messageSeq, this.cookies.make(address, port, hello));
      if (hvr.length > rec.bodyOffset + rec.bodyLength - rec.start) {
        stats.recordsDropped.bad_hello++;
        return;
      }
      stats.helloVerifyRequests++;
      this.host.transmit(hvr, address, port);
      return;
    }
    const helloId = helloIdOf(hello);
    if (bound) {
      const prior = bound.hs;
      if (bound.helloId === helloId) {
        // The client repeats its ClientHello (flight 4 was lost), or a late duplicate arrived: the same
        // random and cookie. A device that rebooted sends another random, even if it starts with the same
        // clock bytes, and gets a new handshake.
        if (prior && prior.step <= Step.AwaitKeyExchange && h.messageSeq === prior.helloSeq)
          this.resendFlight(bound, prior);
        return;
      }
      // A new handshake from this address; the client proved it is there by returning the cookie.
      if (prior) this.fail(bound, prior, 'replaced');
      else this.host.unbind(bound, origin.addressKey);
    }
    const offer = this.negotiate(hello);
    if (typeof offer === 'string') {
      const refusal = offer;
      stats.handshakesFailed[refusal]++;
      this.sendAlert(
        address,
        port,
        rec.seq,
        refusal === 'protocol_version' ? AlertDescription.protocolVersion : AlertDescription.handshakeFailure,
      );
      return;
    }
    // Admission: one address (an IPv6 prefix) is refused beyond its cap, so it cannot take the others'
    // places; at the global cap the oldest handshake in progress makes room, so a flood of half-open
    // handshakes delays new clients by at most its own turnover and never locks them out.
    const admission = admissionKey(address, this.config.ipv6PrefixLength);
    const perAddress = this.perAddress.get(admission) ?? 0;
    if (perAddress >= this.config.maxHandshakesPerAddress) {
      stats.recordsDropped.handshake_cap++;
      this.host.caps.hit('dtls_handshakes_per_address');
      return;
    }
    if (this.inProgress.size >= this.config.maxHandshakes) this.evictOldest();
    this.perAddress.set(admission, perAddress + 1);
    this.start(buf.subarray(start, end), hello, helloId, offer, h.messageSeq, rec.seq, origin, admission);
  }

  /** Checks what the ClientHello offers; returns the server's choice, or why it is refused. */
  private negotiate(hello: ClientHello): Offer | HandshakeFailure {
    // DTLS versions count down: 0xfefd is 1.2, 0xfeff is 1.0.
    if (hello.clientVersion > DTLS_1_2) return 'protocol_version';
    if (!hello.compressionMethods.includes(0)) return 'bad_message';
    if (!hello.extensions.extendedMasterSecret && this.config.requireExtendedMasterSecret)
      return 'no_extended_master_secret';
    const ri = hello.extensions.renegotiationInfo;
    if (ri !== undefined && ri.length !== 0) return 'bad_message';
    for (const suite of this.suites) {
      if (!hello.cipherSuites.includes(suite.id)) continue;
      const offer = this.eligible(suite, hello);
      if (offer) return offer;
    }
    return 'no_common_suite';
  }

  /**
   * Whether `suite` can serve this client: ECDHE needs secp256r1 and uncompressed points (when the client
   * lists groups and formats, RFC 8422 §5.1); ECDHE-ECDSA also the server's credential, ECDSA with SHA-256
   * (when it lists signature algorithms) and a certificate type both sides know for each side (RFC 7250).
   */
  private eligible(suite: CipherSuite, hello: ClientHello): Offer | undefined {
    const none = { suite, serverType: CertificateType.x509, clientType: CertificateType.x509 };
    if (suite.keyExchange === 'psk') return none;
    const ext = hello.extensions;
    if (ext.supportedGroups && !ext.supportedGroups.includes(SECP256R1)) return undefined;
    if (ext.pointFormats && !ext.pointFormats.includes(POINT_UNCOMPRESSED)) return undefined;
    if (suite.keyExchange === 'ecdhe_psk') return none;
    const credentials = this.host.credentials;
    if (!credentials.server) return undefined;
    if (ext.signatureAlgorithms && !ext.signatureAlgorithms.includes(ECDSA_SHA256)) return undefined;
    const clientType = pickType(
      ext.clientCertificateTypes,
      credentials.verifier
        ? [CertificateType.x509, CertificateType.rawPublicKey]
        : [CertificateType.rawPublicKey],
    );
    // A device that authenticates with a raw public key expects one from the server too when it accepts
    // it, whatever the order of its list (libcoap's GnuTLS client lists X.509 first).
    const serverType =
      clientType === CertificateType.rawPublicKey &&
      ext.serverCertificateTypes?.includes(CertificateType.rawPublicKey)
        ? CertificateType.rawPublicKey
        : pickType(ext.serverCertificateTypes, [CertificateType.x509, CertificateType.rawPublicKey]);
    if (serverType === undefined || clientType === undefined) return undefined;
    return { suite, serverType, clientType };
  }

  private start(
    helloMessage: Buffer,
    hello: ClientHello,
    helloId: string,
    offer: Offer,
    helloSeq: number,
    recordSeq: number,
    origin: Origin,
    admission: string,
  ): void {
    const host = this.host;
    const { address, port } = origin;
    const ext = hello.extensions;
    const suite = offer.suite;
    const useCid = this.config.connectionIdLength > 0 && ext.connectionId !== undefined;
    const cid = useCid ? this.newCid() : '';
    const s = new DtlsSession(
      host,
      cid !== '' ? cidPeerKey(cid) : 'dtls:' + randomString(9, 'base64url'),
      address,
      port,
      cid,
      (Math.random() * 0x10000) | 0,
    );
    if (useCid) s.peerCid = (ext.connectionId as Buffer).toString('latin1');
    s.sendLimit = Math.min(MAX_PLAINTEXT, ext.recordSizeLimit ?? MAX_PLAINTEXT);
    s.helloId = helloId;
    // A stateless server continues the record numbering of the ClientHello (RFC 6347 §4.2.1).
    s.epoch0Seq = recordSeq;
    const hs = new Handshake(
      Buffer.from(hello.random),
      random(RANDOM_BYTES),
      suite,
      ext.extendedMasterSecret,
      new Sha256(),
      helloSeq,
      admission,
      Date.now(),
      this.config.retransmitInitialMs,
      this.config.maxHandshakeMessageBytes,
      this.reassembly,
    );
    s.hs = hs;
    if (suite.keyExchange === 'ecdhe_ecdsa') {
      hs.verifier = createVerify('sha256');
      hs.clientCertificateType = offer.clientType;
    }
    hashWhole(hs, helloMessage);
    host.table.bindAddress(origin.addressKey, s);
    host.table.bindCid(s);
    this.inProgress.add(s);
    host.stats.handshakesStarted++;

    const ecdsa = suite.keyExchange === 'ecdhe_ecdsa';
    const extensions = encodeServerExtensions({
      renegotiationInfo:
        ext.renegotiationInfo !== undefined || hello.cipherSuites.includes(RENEGOTIATION_SCSV),
      extendedMasterSecret: ext.extendedMasterSecret,
      recordSizeLimit: ext.recordSizeLimit !== undefined ? MAX_PLAINTEXT : undefined,
      connectionId: useCid ? s.cid : undefined,
      ecPointFormats: suite.keyExchange !== 'psk' && ext.pointFormats !== undefined,
      clientCertificateType: ecdsa && ext.clientCertificateTypes ? offer.clientType : undefined,
      serverCertificateType: ecdsa && ext.serverCertificateTypes ? offer.serverType : undefined,
    });
    const messages = [
      handshakeMessage(
        HandshakeType.serverHello,
        hs.serverSeq++,
        serverHelloBody(DTLS_1_2, hs.serverRandom, suite.id, extensions),
      ),
    ];
    const add = (type: number, body: Buffer) => messages.push(handshakeMessage(type, hs.serverSeq++, body));
    if (suite.keyExchange === 'psk') {
      if (this.hint.length > 0) add(HandshakeType.serverKeyExchange, pskServerKeyExchangeBody(this.hint));
    } else {
      const key = ephemeralKey();
      hs.ecdh = key.privateKey;
      const params = ecdhParams(key.point);
      if (suite.keyExchange === 'ecdhe_psk') {
        add(HandshakeType.serverKeyExchange, ecdhePskServerKeyExchangeBody(this.hint, params));
      } else {
        const credential = host.credentials.server;
        if (!credential) throw new Error('ECDHE-ECDSA negotiated without a server credential');
        const sha256 = ext.signatureAlgorithms !== undefined;
        const signature = sign(
          sha256 ? 'sha256' : 'sha1',
          Buffer.concat([hs.clientRandom, hs.serverRandom, params]),
          {
            key: credential.key,
            dsaEncoding: 'der',
          },
        );
        add(
          HandshakeType.certificate,
          offer.serverType === CertificateType.rawPublicKey ? credential.rpkBody : credential.x509Body,
        );
        add(
          HandshakeType.serverKeyExchange,
          signedServerKeyExchangeBody(params, sha256 ? ECDSA_SHA256 : ECDSA_SHA1, signature),
        );
        const verifier = host.credentials.verifier;
        add(
          HandshakeType.certificateRequest,
          certificateRequestBody(
            CERTIFICATE_SIGNATURES,
            offer.clientType === CertificateType.x509 && verifier ? verifier.authorities : [],
          ),
        );
      }
    }
    add(HandshakeType.serverHelloDone, EMPTY);
    for (const m of messages) hashWhole(hs, m);
    const flight = packHandshakeFlight(
      messages,
      s.epoch0Seq,
      this.config.pathMtu - ipOverhead(address),
      s.sendLimit,
    );
    for (const d of flight) s.epoch0Seq += d.records.length;
    hs.flight = flight;
    this.arm(s, hs);
    for (const d of flight) host.transmit(d.datagram, address, port);
  }

  /** Ends the handshake in progress that started first (the set keeps the order of starts). */
  private evictOldest(): void {
    const oldest = this.inProgress.values().next();
    if (oldest.done) return;
    const s = oldest.value;
    this.host.caps.hit('dtls_handshakes');
    if (s.hs) this.fail(s, s.hs, 'evicted');
    else this.inProgress.delete(s);
  }

  private newCid(): string {
    for (;;) {
      const cid = randomString(this.config.connectionIdLength, 'latin1');
      if (!this.host.table.byCid(cid)) return cid;
    }
  }

  private arm(s: DtlsSession, hs: Handshake): void {
    hs.timer = setTimeout(onRetransmitTimer, hs.timeoutMs, this, s);
    hs.timer.unref();
  }

  private stopTimer(hs: Handshake): void {
    if (hs.timer) clearTimeout(hs.timer);
    hs.timer = null;
  }

  private resendFlight(s: DtlsSession, hs: Handshake): void {
    if (!hs.flight) return;
    this.stopTimer(hs);
    for (const d of hs.flight) {
      renumber(d, s.epoch0Seq);
      s.epoch0Seq += d.records.length;
    }
    this.host.stats.flightsRetransmitted++;
    this.arm(s, hs);
    for (const d of hs.flight) this.host.transmit(d.datagram, s.address, s.port);
  }

  /** Adds a fragment (header in this.header) and handles every message it completes. */
  private fragment(s: DtlsSession, hs: Handshake, buf: Buffer): void {
    const result = hs.messages.add(this.header, buf);
    if (result === FragmentResult.Refused) {
      this.host.stats.recordsDropped.malformed++;
      return;
    }
    if (result === FragmentResult.Full) {
      this.host.stats.recordsDropped.reassembly_cap++;
      return;
    }
    if (result === FragmentResult.Old) return;
    for (let m = hs.messages.take(); m; m = hs.messages.take()) {
      this.message(s, hs, m);
      if (s.hs !== hs) return;
    }
  }

  private message(s: DtlsSession, hs: Handshake, m: HandshakeMessage): void {
    if (m.type === HandshakeType.clientKeyExchange && hs.step === Step.AwaitKeyExchange)
      this.keyExchange(s, hs, m);
    else if (m.type === HandshakeType.certificate && hs.step === Step.AwaitCertificate)
      this.certificate(s, hs, m);
    else if (m.type === HandshakeType.certificateVerify && hs.step === Step.AwaitCertificateVerify)
      this.certificateVerify(s, hs, m);
    else if (m.type === HandshakeType.finished && hs.step === Step.AwaitFinished) this.finished(s, hs, m);
    else if (m.type === HandshakeType.clientKeyExchange && hs.step === Step.AwaitCertificate)
      this.fail(s, hs, 'no_certificate', AlertDescription.handshakeFailure);
    else this.fail(s, hs, 'bad_message', AlertDescription.unexpectedMessage);
  }

  /** The client's Certificate (ECDHE-ECDSA): an X.509 chain or a raw public key, verified at once. */
  private certificate(s: DtlsSession, hs: Handshake, m: HandshakeMessage): void {
    // The client has flight 4: it sent flight 5.
    this.stopTimer(hs);
    hs.flight = null;
    let peer: VerifiedPeer | CertificateFailure;
    if (hs.clientCertificateType === CertificateType.rawPublicKey) {
      const spki = parseRawPublicKey(m.body);
      if (!spki) return this.fail(s, hs, 'bad_message', AlertDescription.decodeError);
      if (spki.length === 0) return this.fail(s, hs, 'no_certificate', AlertDescription.handshakeFailure);
      peer = verifyRawPublicKey(spki);
    } else {
      const chain = parseCertificateList(m.body);
      if (!chain) return this.fail(s, hs, 'bad_message', AlertDescription.decodeError);
      if (chain.length === 0) return this.fail(s, hs, 'no_certificate', AlertDescription.handshakeFailure);
      const verifier = this.host.credentials.verifier;
      peer = verifier ? verifier.verifyChain(chain, Date.now()) : 'unknown_ca';
    }
    if (typeof peer === 'string') return this.fail(s, hs, peer, CERTIFICATE_ALERTS[peer]);
    hs.peer = peer;
    hs.identity = peer.fingerprint;
    hashMessage(hs, m);
    hs.step = Step.AwaitKeyExchange;
  }

  /** ECDH with the client's point: the shared secret, or undefined (the point is not on the curve). */
  private agree(hs: Handshake, point: Buffer): Buffer | undefined {
    const secret = sharedSecret(hs.ecdh as KeyObject, point);
    hs.ecdh = null;
    return secret;
  }

  private keyExchange(s: DtlsSession, hs: Handshake, m: HandshakeMessage): void {
    const kx = hs.suite.keyExchange;
    if (kx === 'ecdhe_ecdsa') {
      const point = parseEcdhClientKeyExchange(m.body);
      if (!point) return this.fail(s, hs, 'bad_message', AlertDescription.decodeError);
      const z = this.agree(hs, point);
      if (!z) return this.fail(s, hs, 'bad_key_share', AlertDescription.illegalParameter);
      hs.premaster = z;
      hashMessage(hs, m);
      hs.sessionHash = hs.transcript.digest();
      hs.step = Step.AwaitCertificateVerify;
      return;
    }
    let identity: Buffer | undefined;
    let z: Buffer | undefined;
    if (kx === 'ecdhe_psk') {
      const cke = parseEcdhePskClientKeyExchange(m.body);
      if (!cke) return this.fail(s, hs, 'bad_message', AlertDescription.decodeError);
      z = this.agree(hs, cke.point);
      if (!z) return this.fail(s, hs, 'bad_key_share', AlertDescription.illegalParameter);
      identity = cke.identity;
    } else identity = parsePskClientKeyExchange(m.body);
    if (!identity) {
      this.fail(s, hs, 'bad_message', AlertDescription.decodeError);
      return;
    }
    hs.premaster = z ?? null;
    hashMessage(hs, m);
    hs.sessionHash = hs.transcript.digest();
    hs.clientFinishedHash = hs.sessionHash;
    hs.identity = identity.toString('utf8');
    // The client has flight 4: it sent flight 5.
    this.stopTimer(hs);
    hs.flight = null;
    hs.step = Step.Lookup;
    let lookup: Promise<PskKey | undefined>;
    try {
      lookup = this.host.pskLookup(hs.identity);
    } catch (err) {
      lookup = Promise.reject(err);
    }
    lookup.then(
      (found) => this.keysFor(s, hs, found),
      (err: unknown) => {
        if (s.hs !== hs) return;
        this.host.log.warn({ err: (err as Error)?.message }, 'PSK lookup failed');
        this.fail(s, hs, 'lookup_error', AlertDescription.internalError);
      },
    );
  }

  private keysFor(s: DtlsSession, hs: Handshake, found: PskKey | undefined): void {
    if (s.hs !== hs) return;
    hs.unknownIdentity = found === undefined;
    hs.deviceId = found?.deviceId;
    const key = found?.key ?? random(16);
    const premaster = hs.premaster ? ecdhePskPremasterSecret(hs.premaster, key) : pskPremasterSecret(key);
    if (found) {
      s.deviceId = found.deviceId;
      s.pskIdentity = found.identity ?? hs.identity;
      s.credential = 'psk';
    }
    this.deriveKeys(s, hs, premaster);
  }

  /**
   * The client's CertificateVerify (ECDHE-ECDSA): a signature with the key of its certificate over the
   * handshake up to ClientKeyExchange. Then the device behind the certificate is looked up.
   */
  private certificateVerify(s: DtlsSession, hs: Handshake, m: HandshakeMessage): void {
    const peer = hs.peer as VerifiedPeer;
    const cv = parseCertificateVerify(m.body);
    if (!cv) return this.fail(s, hs, 'bad_message', AlertDescription.decodeError);
    let ok: boolean;
    try {
      ok =
        cv.algorithm === ECDSA_SHA256 &&
        (hs.verifier as NonNullable<Handshake['verifier']>).verify(
          { key: peer.publicKey, dsaEncoding: 'der' },
          cv.signature,
        );
    } catch {
      ok = false;
    }
    hs.verifier = null;
    if (!ok) return this.fail(s, hs, 'bad_signature', AlertDescription.decryptError);
    hashMessage(hs, m);
    hs.clientFinishedHash = hs.transcript.digest();
    hs.step = Step.Lookup;
    let lookup: Promise<CertificateOwner | undefined>;
    try {
      lookup = deviceForPeer(this.host.certificateLookup, this.identityRule, peer);
    } catch (err) {
      lookup = Promise.reject(err);
    }
    const status = this.host.certificateStatus;
    lookup
      .then(async (device) => {
        if (!device || peer.kind !== 'x509' || !status || s.hs !== hs)
          return { device, answer: 'active' as const };
        return { device, answer: await status.check(peer.fingerprint, device.thing) };
      })
      .then(
        ({ device, answer }) => {
          if (answer === 'active') this.certificateDevice(s, hs, peer, device);
          else if (s.hs === hs) this.fail(s, hs, answer, STATUS_ALERTS[answer]);
        },
        (err: unknown) => {
          if (s.hs !== hs) return;
          this.host.log.warn({ err: (err as Error)?.message }, 'certificate lookup failed');
          this.fail(s, hs, 'lookup_error', AlertDescription.internalError);
        },
      );
  }

  private certificateDevice(
    s: DtlsSession,
    hs: Handshake,
    peer: VerifiedPeer,
    device: CertificateOwner | undefined,
  ): void {
    if (s.hs !== hs) return;
    if (!device) {
      if (peer.kind === 'rpk') this.fail(s, hs, 'unknown_key', AlertDescription.certificateUnknown);
      else this.fail(s, hs, 'unmapped', AlertDescription.accessDenied);
      return;
    }
    hs.deviceId = device.id;
    s.deviceId = device.id;
    s.credential = peer.kind;
    s.fingerprint = peer.fingerprint;
    hs.peer = null;
    const premaster = hs.premaster as Buffer;
    this.deriveKeys(s, hs, premaster);
  }

  /** Master secret and key block from the premaster; then the client's held epoch-1 records are read. */
  private deriveKeys(s: DtlsSession, hs: Handshake, premaster: Buffer): void {
    hs.premaster = null;
    hs.master = new HmacSha256(
      hs.extendedMasterSecret
        ? extendedMasterSecret(premaster, hs.sessionHash as Buffer)
        : masterSecret(premaster, hs.clientRandom, hs.serverRandom),
    );
    const store = this.host.keys;
    s.keySlot = store.alloc();
    keyBlock(hs.master, hs.serverRandom, hs.clientRandom, KEY_BLOCK_LENGTH).copy(
      store.slab(s.keySlot),
      store.offset(s.keySlot),
    );
    premaster.fill(0);
    s.suite = hs.suite;
    hs.step = Step.AwaitFinished;
    const early = hs.early.splice(0);
    for (const r of early) {
      if (s.hs !== hs) return;
      this.host.replay(s, r.record, r.datagram);
    }
  }

  private finished(s: DtlsSession, hs: Handshake, m: HandshakeMessage): void {
    const master = hs.master as HmacSha256;
    const expected = verifyData(master, 'client finished', hs.clientFinishedHash as Buffer);
    if (m.body.length !== VERIFY_DATA_BYTES || !timingSafeEqual(m.body, expected)) {
      this.badFinished(s, hs);
      return;
    }
    hashMessage(hs, m);
    const store = this.host.keys;
    verifyData(master, 'server finished', hs.transcript.digest()).copy(
      store.slab(s.keySlot),
      store.offset(s.keySlot) + KEY_BLOCK_LENGTH,
    );
    const seq = hs.serverSeq;
    this.end(s, hs);
    const stored = this.host.establish(s);
    if (stored === undefined) return this.sendFinished(s, seq);
    // A shared session: the last flight waits until the session is in the store (or storing failed), so a
    // device that has the server's Finished has a session any replica can take over, even when this one is
    // killed right after. Meanwhile the client's repeated flight 5 is dropped: the Finished is on its way.
    void stored.then(() => {
      if (s.keySlot >= 0 && s.finishedSeq < 0) this.sendFinished(s, seq);
    });
  }

  /** The client's Finished failed under the keys of this handshake: wrong key or unknown identity. */
  private badFinished(s: DtlsSession, hs: Handshake): void {
    this.fail(s, hs, hs.unknownIdentity ? 'unknown_identity' : 'bad_key', AlertDescription.decryptError);
  }

  private resendFinished(s: DtlsSession): void {
    this.host.stats.flightsRetransmitted++;
    this.sendFinished(s, s.finishedSeq);
  }

  /** Sends flight 6 (ChangeCipherSpec, Finished with message_seq `seq`); it may be sent again until data arrives. */
  private sendFinished(s: DtlsSession, seq: number): void {
    s.finishedSeq = seq;
    const store = this.host.keys;
    const keys = store.slab(s.keySlot);
    const at = store.offset(s.keySlot);
    const finished = handshakeMessage(
      HandshakeType.finished,
      s.finishedSeq,
      keys.subarray(at + KEY_BLOCK_LENGTH, at + KEY_BLOCK_LENGTH + VERIFY_DATA_BYTES),
    );
    const datagram = finishedFlight(
      s.suite as CipherSuite,
      keys,
      at,
      s.peerCid,
      s.epoch0Seq++,
      s.writeSeq++,
      finished,
    );
    this.host.stats.recordsOut++;
    this.host.transmit(datagram, s.address, s.port);
  }

  /** Ends the handshake state of `s` (completed or failed). */
  private end(s: DtlsSession, hs: Handshake): void {
    this.stopTimer(hs);
    hs.messages.clear();
    this.inProgress.delete(s);
    const n = (this.perAddress.get(hs.admission) ?? 1) - 1;
    if (n > 0) this.perAddress.set(hs.admission, n);
    else this.perAddress.delete(hs.admission);
    s.hs = null;
  }

  private fail(s: DtlsSession, hs: Handshake, reason: HandshakeFailure, alert?: number): void {
    this.host.stats.handshakesFailed[reason]++;
    const certificate = hs.suite.keyExchange === 'ecdhe_ecdsa';
    const fields = {
      reason,
      deviceId: hs.deviceId,
      pskIdentity: certificate ? undefined : hs.identity || undefined,
      fingerprint: certificate ? hs.identity || undefined : undefined,
      address: s.address,
      port: s.port,
    };
    // A device refused for its credentials is worth an info line (once a minute per identity or
    // certificate at most); other failures (floods, garbage, lost flights) stay at debug.
    const refusal = REFUSALS[reason];
    const held = refusal !== undefined && hs.identity !== '' ? this.refusalLog.take(hs.identity) : undefined;
    if (held !== undefined)
      this.host.log.info({ ...fields, suppressed: held || undefined }, `DTLS handshake refused: ${refusal}`);
    else this.host.log.debug(fields, 'DTLS handshake failed');
    if (alert !== undefined) this.sendAlert(s.address, s.port, s.epoch0Seq++, alert);
    this.end(s, hs);
    this.host.discard(s);
  }

  private sendAlert(address: string, port: number, seq: number, description: number): void {
    const alert = encodeAlert(AlertLevel.fatal, description);
    this.host.transmit(packPlaintext(ContentType.alert, DTLS_1_2, [alert], seq).datagram, address, port);
  }
}
