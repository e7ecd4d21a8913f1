/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): an HMAC over the client's address and the
 * ClientHello fields a client must repeat, keyed by a secret that rotates. A cookie made with the current or
 * the previous secret is accepted, so a client that got its cookie just before a rotation still gets in.
 * The secret rotates lazily when a cookie is made or checked: no timer.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HmacSha256 } from '../crypto/sha256.js';
import type { ClientHello } from '../protocol/handshake.js';

export const COOKIE_BYTES = 16;

/** Scratch: the fixed fields (a ClientHello has at most 32,767 suites) and the address, and the MAC. */
const FIXED = Buffer.alloc(5 + 0x10000 + 64);
const MAC = Buffer.alloc(32);

export class CookieJar {
  private current = new HmacSha256(randomBytes(32));
  private previous = new HmacSha256(randomBytes(32));
  private rotatedAt: number;

  constructor(
    private readonly rotationMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.rotatedAt = now();
  }

  private rotate(): void {
    const t = this.now();
    if (t - this.rotatedAt < this.rotationMs) return;
    this.previous = t - this.rotatedAt < 2 * this.rotationMs ? this.current : new HmacSha256(randomBytes(32));
    this.current = new HmacSha256(randomBytes(32));
    this.rotatedAt = t;
  }

  /** The MAC over the client's address and the ClientHello fields a client must repeat, into MAC. */
  private compute(secret: HmacSha256, address: string, port: number, hello: ClientHello): void {
    // address length | port | client_version | cipher_suites, then the address and the other fields.
    const n = hello.cipherSuites.length;
    FIXED[0] = address.length;
    FIXED.writeUInt16BE(port, 1);
    FIXED.writeUInt16BE(hello.clientVersion, 3);
    for (let i = 0; i < n; i++) FIXED.writeUInt16BE(hello.cipherSuites[i], 5 + 2 * i);
    const end = 5 + 2 * n + FIXED.write(address, 5 + 2 * n, 64, 'latin1');
    secret
      .begin()
      .update(FIXED, 0, end)
      .update(hello.random)
      .update(hello.sessionId)
      .update(hello.compressionMethods);
    secret.end(MAC);
  }

  /** The cookie for this client and ClientHello. */
  make(address: string, port: number, hello: ClientHello): Buffer {
    this.rotate();
    this.compute(this.current, address, port, hello);
    return Buffer.from(MAC.subarray(0, COOKIE_BYTES));
  }

  /** Whether the ClientHello carries a cookie made for this client with the current or previous secret. */
  verify(address: string, port: number, hello: ClientHello): boolean {
    if (hello.cookie.length !== COOKIE_BYTES) return false;
    this.rotate();
    const cookie = MAC.subarray(0, COOKIE_BYTES);
    this.compute(this.current, address, port, hello);
    if (timingSafeEqual(cookie, hello.cookie)) return true;
    this.compute(this.previous, address, port, hello);
    return timingSafeEqual(cookie, hello.cookie);
  }
}
