/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): an HMAC over the client's address and the
 * ClientHello fields a client must repeat, keyed by a secret that rotates. A cookie made with the current or
 * the previous secret is accepted, so a client that got its cookie just before a rotation still gets in.
 * The secret rotates lazily when a cookie is made or checked: no timer.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ClientHello } from './handshake.js';

export const COOKIE_BYTES = 16;

export class CookieJar {
  private current = randomBytes(32);
  private previous = randomBytes(32);
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
    this.previous = t - this.rotatedAt < 2 * this.rotationMs ? this.current : randomBytes(32);
    this.current = randomBytes(32);
    this.rotatedAt = t;
  }

  private compute(secret: Buffer, address: string, port: number, hello: ClientHello): Buffer {
    const h = createHmac('sha256', secret);
    h.update(address);
    const fixed = Buffer.allocUnsafe(4);
    fixed.writeUInt16BE(port, 0);
    fixed.writeUInt16BE(hello.clientVersion, 2);
    h.update(fixed);
    h.update(hello.random);
    h.update(hello.sessionId);
    const suites = Buffer.allocUnsafe(2 * hello.cipherSuites.length);
    for (let i = 0; i < hello.cipherSuites.length; i++) suites.writeUInt16BE(hello.cipherSuites[i], 2 * i);
    h.update(suites);
    h.update(hello.compressionMethods);
    return h.digest().subarray(0, COOKIE_BYTES);
  }

  /** The cookie for this client and ClientHello. */
  make(address: string, port: number, hello: ClientHello): Buffer {
    this.rotate();
    return this.compute(this.current, address, port, hello);
  }

  /** Whether the ClientHello carries a cookie made for this client with the current or previous secret. */
  verify(address: string, port: number, hello: ClientHello): boolean {
    if (hello.cookie.length !== COOKIE_BYTES) return false;
    this.rotate();
    return (
      timingSafeEqual(this.compute(this.current, address, port, hello), hello.cookie) ||
      timingSafeEqual(this.compute(this.previous, address, port, hello), hello.cookie)
    );
  }
}
