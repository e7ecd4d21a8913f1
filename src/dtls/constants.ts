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
  serverKeyExchange: 12,
  serverHelloDone: 14,
  clientKeyExchange: 16,
  finished: 20,
} as const;

export const ExtensionType = {
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
  illegalParameter: 47,
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
