/** Wire constants of DTLS 1.2 (RFC 6347, RFC 5246) and the extensions the server speaks. */

export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
  /** RFC 9146 record carrying a Connection ID. */
  tls12Cid: 25,
} as const;

export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  helloVerifyRequest: 3,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
} as const;

export const ExtensionType = {
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  clientCertificateType: 19,
  serverCertificateType: 20,
  recordSizeLimit: 28,
  extendedMasterSecret: 23,
  connectionId: 54,
  renegotiationInfo: 0xff01,
} as const;

/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746). */
export const RENEGOTIATION_SCSV = 0x00ff;

/** DTLS 1.2 and DTLS 1.0 on the wire (one's complement of 1.2 / 1.1). */
export const DTLS_1_2 = 0xfefd;
export const DTLS_1_0 = 0xfeff;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  handshakeFailure: 40,
  badCertificate: 42,
  unsupportedCertificate: 43,
  certificateRevoked: 44,
  certificateExpired: 45,
  certificateUnknown: 46,
  illegalParameter: 47,
  unknownCa: 48,
  accessDenied: 49,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  insufficientSecurity: 71,
  internalError: 80,
  noRenegotiation: 100,
} as const;

/** Record header without Connection ID: type, version, epoch, 48-bit sequence number, length. */
export const RECORD_HEADER_BYTES = 13;
/** Handshake message header: type, length(3), message_seq(2), fragment_offset(3), fragment_length(3). */
export const HANDSHAKE_HEADER_BYTES = 12;
/** Largest record plaintext (2^14, RFC 5246 §6.2.1). */
export const MAX_PLAINTEXT = 16384;
/** Largest 48-bit record sequence number. */
export const MAX_SEQUENCE = 2 ** 48 - 1;
export const RANDOM_BYTES = 32;
export const VERIFY_DATA_BYTES = 12;
export const MASTER_SECRET_BYTES = 48;

/** secp256r1 in supported_groups (RFC 8422 §5.1.1), the only curve the server uses. */
export const SECP256R1 = 23;
/** ec_point_formats: uncompressed (RFC 8422 §5.1.2). */
export const POINT_UNCOMPRESSED = 0;
/** ECParameters.curve_type named_curve (RFC 8422 §5.4). */
export const NAMED_CURVE = 3;
/** SignatureAndHashAlgorithm ecdsa_secp256r1_sha256 (RFC 5246 §7.4.1.4.1: sha256(4), ecdsa(3)). */
export const ECDSA_SHA256 = 0x0403;
/** ... and ecdsa with sha1, what a client that sends no signature_algorithms supports (RFC 5246 §7.4.1.4.1). */
export const ECDSA_SHA1 = 0x0203;
/** ClientCertificateType ecdsa_sign (RFC 8422 §5.5). */
export const ECDSA_SIGN = 64;

/** Certificate types of RFC 7250 (client_certificate_type / server_certificate_type). */
export const CertificateType = { x509: 0, rawPublicKey: 2 } as const;
