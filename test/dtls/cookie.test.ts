/** HelloVerifyRequest cookies: bound to the address, port and ClientHello, with rotating secrets. */
import { describe, expect, it } from 'vitest';
import { COOKIE_BYTES, CookieJar } from '../../src/dtls/server/cookie.js';
import { handshakeMessage, parseClientHello } from '../../src/dtls/protocol/handshake.js';

describe('HelloVerifyRequest cookie', () => {
  const hello = (random: number, cookie: Buffer = Buffer.alloc(0)) => {
    const body = Buffer.concat([
      Buffer.from('fefd', 'hex'),
      Buffer.alloc(32, random),
      Buffer.from([0, cookie.length]),
      cookie,
      Buffer.from('0002c0a80100', 'hex'),
    ]);
    return parseClientHello(body)!;
  };

  it('is bound to the address, port and ClientHello, and survives one rotation', () => {
    let now = 0;
    const jar = new CookieJar(1000, () => now);
    const cookie = jar.make('10.0.0.1', 4000, hello(1));
    expect(cookie.length).toBe(COOKIE_BYTES);
    expect(jar.verify('10.0.0.1', 4000, hello(1, cookie))).toBe(true);
    expect(jar.verify('10.0.0.2', 4000, hello(1, cookie))).toBe(false);
    expect(jar.verify('10.0.0.1', 4001, hello(1, cookie))).toBe(false);
    expect(jar.verify('10.0.0.1', 4000, hello(2, cookie))).toBe(false);
    expect(jar.verify('10.0.0.1', 4000, hello(1))).toBe(false);
    now = 1500;
    expect(jar.verify('10.0.0.1', 4000, hello(1, cookie))).toBe(true);
    now = 2600;
    expect(jar.verify('10.0.0.1', 4000, hello(1, cookie))).toBe(false);
  });

  it('forgets both secrets after a long pause', () => {
    let now = 0;
    const jar = new CookieJar(1000, () => now);
    const cookie = jar.make('10.0.0.1', 4000, hello(1));
    now = 5000;
    expect(jar.verify('10.0.0.1', 4000, hello(1, cookie))).toBe(false);
  });

  it('keeps the HelloVerifyRequest smaller than any ClientHello', () => {
    // 13 record + 12 handshake + 2 version + 1 length + cookie, against the smallest possible ClientHello.
    const smallestHello =
      13 + 12 + handshakeMessage(1, 0, Buffer.alloc(2 + 32 + 1 + 1 + 2 + 2 + 1 + 1)).length - 12;
    expect(13 + 12 + 3 + COOKIE_BYTES).toBeLessThan(smallestHello);
  });
});
