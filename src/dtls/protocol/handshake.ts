/**
 * Handshake message codecs (RFC 6347 §4.2.2, RFC 5246 §7.4, RFC 4279): the 12-byte DTLS handshake header,
 * the messages a PSK server reads (ClientHello, ClientKeyExchange, Finished) and the ones it writes.
 */
import { Cursor, EMPTY } from './cursor.js';
import { HANDSHAKE_HEADER_BYTES, RANDOM_BYTES } from './constants.js';
import { parseClientExtensions, type ClientExtensions } from './extensions.js';

/** One handshake fragment's header, filled in place by `readHandshakeHeader`. */
export class HandshakeHeader {
  type = 0;
  /** Length of the whole message body. */
  length = 0;
  messageSeq = 0;
  fragmentOffset = 0;
  fragmentLength = 0;
  /** Offset of the fragment bytes in the buffer read from. */
  bodyOffset = 0;
}

/**
 * Reads the handshake header at `offset` (inside a record body ending at `end`). Returns the offset after
 * the fragment, or -1 when the header is truncated or inconsistent.
 */
export function readHandshakeHeader(buf: Buffer, offset: number, end: number, out: HandshakeHeader): number {
  if (end - offset < HANDSHAKE_HEADER_BYTES) return -1;
  const length = buf.readUIntBE(offset + 1, 3);
  const fragmentOffset = buf.readUIntBE(offset + 6, 3);
  const fragmentLength = buf.readUIntBE(offset + 9, 3);
  const bodyOffset = offset + HANDSHAKE_HEADER_BYTES;
  if (fragmentLength > end - bodyOffset || fragmentOffset + fragmentLength > length) return -1;
  out.type = buf[offset];
  out.length = length;
  out.messageSeq = buf.readUInt16BE(offset + 4);
  out.fragmentOffset = fragmentOffset;
  out.fragmentLength = fragmentLength;
  out.bodyOffset = bodyOffset;
  return bodyOffset + fragmentLength;
}

/** Writes a handshake header for an unfragmented message; returns the offset of the body. */
export function writeHandshakeHeader(
  buf: Buffer,
  offset: number,
  type: number,
  messageSeq: number,
  length: number,
): number {
  buf[offset] = type;
  buf.writeUIntBE(length, offset + 1, 3);
  buf.writeUInt16BE(messageSeq, offset + 4);
  buf.writeUIntBE(0, offset + 6, 3);
  buf.writeUIntBE(length, offset + 9, 3);
  return offset + HANDSHAKE_HEADER_BYTES;
}

/** A whole handshake message (header + body) as it enters the handshake hash. */
export function handshakeMessage(type: number, messageSeq: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HANDSHAKE_HEADER_BYTES + body.length);
  body.copy(out, writeHandshakeHeader(out, 0, type, messageSeq, body.length));
  return out;
}

export interface ClientHello {
  readonly clientVersion: number;
  readonly random: Buffer;
  readonly sessionId: Buffer;
  readonly cookie: Buffer;
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: Buffer;
  readonly extensions: ClientExtensions;
}

/**
 * Parses a ClientHello body. Returns undefined when it is malformed (lengths that do not add up, an empty
 * suite or compression list, a broken extension block). Buffers are views into `body`.
 */
export function parseClientHello(body: Buffer): ClientHello | undefined {
  const c = new Cursor(body, 0, body.length);
  const clientVersion = c.u16();
  const random = c.view(RANDOM_BYTES);
  const sessionId = c.vec8();
  const cookie = c.vec8();
  const suitesBytes = c.u16();
  if (!c.ok || suitesBytes === 0 || suitesBytes % 2 !== 0 || sessionId.length > 32) return undefined;
  const cipherSuites: number[] = [];
  for (let i = 0; i < suitesBytes; i += 2) cipherSuites.push(c.u16());
  const compressionMethods = c.vec8();
  if (!c.ok || compressionMethods.length === 0) return undefined;
  let extensions: ClientExtensions | undefined;
  if (c.remaining === 0) extensions = parseClientExtensions(EMPTY);
  else {
    const block = c.vec16();
    if (!c.ok || c.remaining !== 0) return undefined;
    extensions = parseClientExtensions(block);
  }
  if (!extensions) return undefined;
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

/** Parses a PSK ClientKeyExchange (RFC 4279 §2): the identity, or undefined when malformed. */
export function parsePskClientKeyExchange(body: Buffer): Buffer | undefined {
  const c = new Cursor(body, 0, body.length);
  const identity = c.vec16();
  return c.ok && c.remaining === 0 ? identity : undefined;
}

/** HelloVerifyRequest body: server_version and cookie. */
export function helloVerifyRequestBody(serverVersion: number, cookie: Buffer): Buffer {
  const out = Buffer.allocUnsafe(3 + cookie.length);
  out.writeUInt16BE(serverVersion, 0);
  out[2] = cookie.length;
  cookie.copy(out, 3);
  return out;
}

/** ServerHello body with an empty session_id (no resumption), null compression and `extensions`. */
export function serverHelloBody(
  version: number,
  random: Buffer,
  cipherSuite: number,
  extensions: Buffer,
): Buffer {
  const out = Buffer.allocUnsafe(
    2 + RANDOM_BYTES + 1 + 2 + 1 + (extensions.length ? 2 + extensions.length : 0),
  );
  let p = out.writeUInt16BE(version, 0);
  p += random.copy(out, p);
  out[p++] = 0;
  p = out.writeUInt16BE(cipherSuite, p);
  out[p++] = 0;
  if (extensions.length) {
    p = out.writeUInt16BE(extensions.length, p);
    extensions.copy(out, p);
  }
  return out;
}

/** ServerKeyExchange for PSK: the identity hint (RFC 4279 §2). */
export function pskServerKeyExchangeBody(hint: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + hint.length);
  out.writeUInt16BE(hint.length, 0);
  hint.copy(out, 2);
  return out;
}
