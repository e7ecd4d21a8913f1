/** Replay window, handshake reassembly and HelloVerifyRequest cookies. */
import { describe, expect, it } from 'vitest';
import { COOKIE_BYTES, CookieJar } from '../../src/dtls/server/cookie.js';
import { HandshakeHeader, handshakeMessage, parseClientHello } from '../../src/dtls/protocol/handshake.js';
import { FragmentResult, MAX_RUNS, Reassembler, ReassemblyBudget } from '../../src/dtls/server/reassembly.js';
import { replayFresh, replayMark, type ReplayState } from '../../src/dtls/server/replay-window.js';
import { addressKey } from '../../src/dtls/server/session-table.js';

describe('replay window', () => {
  const fresh = (): ReplayState => ({ top: -1, lo: 0, hi: 0 });

  it('accepts each number once, in any order inside 64, and nothing older', () => {
    const w = fresh();
    const order = [0, 5, 3, 63, 64, 1, 100, 40, 37, 99];
    for (const n of order) {
      expect(replayFresh(w, n), `first ${n}`).toBe(true);
      replayMark(w, n);
      expect(replayFresh(w, n), `again ${n}`).toBe(false);
    }
    // The window is the 64 numbers up to 100: 37..100.
    expect(replayFresh(w, 38)).toBe(true);
    expect(replayFresh(w, 36)).toBe(false);
    expect(replayFresh(w, 0)).toBe(false);
    for (const n of [40, 37, 63, 64, 99, 100]) expect(replayFresh(w, n)).toBe(false);
  });

  it('tells when a record moved the window (newest seen)', () => {
    const w = fresh();
    expect(replayMark(w, 10)).toBe(true);
    expect(replayMark(w, 8)).toBe(false);
    expect(replayMark(w, 11)).toBe(true);
    expect(replayMark(w, 2 ** 47)).toBe(true);
    expect(replayFresh(w, 11)).toBe(false);
    expect(replayFresh(w, 2 ** 47 - 63)).toBe(true);
  });

  it('agrees with a set-based model on a long random walk, across 32-bit shifts', () => {
    const w = fresh();
    const seen = new Set<number>();
    let top = -1;
    let x = 12345;
    const rand = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 20000; i++) {
      const n = Math.max(0, top + (rand() % 100) - 70);
      const expected = n > top || (top - n < 64 && !seen.has(n));
      expect(replayFresh(w, n)).toBe(expected);
      if (expected) {
        replayMark(w, n);
        seen.add(n);
        top = Math.max(top, n);
      }
    }
  });
});

describe('handshake reassembly', () => {
  function fragment(
    seq: number,
    body: Buffer,
    offset: number,
    length: number,
    type = 16,
  ): [HandshakeHeader, Buffer] {
    const buf = body.subarray(offset, offset + length);
    const h = new HandshakeHeader();
    Object.assign(h, {
      type,
      length: body.length,
      messageSeq: seq,
      fragmentOffset: offset,
      fragmentLength: length,
      bodyOffset: 0,
    });
    return [h, Buffer.from(buf)];
  }

  it('reassembles overlapping, repeated and reordered fragments', () => {
    const body = Buffer.from('0123456789abcdefghij');
    const r = new Reassembler(2, 1000, new ReassemblyBudget(1 << 20));
    expect(r.add(...fragment(2, body, 10, 10))).toBe(FragmentResult.Accepted);
    expect(r.take()).toBeUndefined();
    expect(r.add(...fragment(2, body, 4, 8))).toBe(FragmentResult.Accepted);
    expect(r.add(...fragment(2, body, 4, 8))).toBe(FragmentResult.Accepted);
    expect(r.take()).toBeUndefined();
    expect(r.add(...fragment(2, body, 0, 5))).toBe(FragmentResult.Accepted);
    const m = r.take();
    expect(m?.body.toString()).toBe(body.toString());
    expect(m?.messageSeq).toBe(2);
    expect(r.next).toBe(3);
    expect(r.add(...fragment(2, body, 0, 20))).toBe(FragmentResult.Old);
  });

  it('holds a whole message without copying, and never writes into it for a repeated fragment', () => {
    const r = new Reassembler(5, 1000, new ReassemblyBudget(1 << 20));
    const [h, buf] = fragment(5, Buffer.from('whole message'), 0, 13);
    expect(r.add(h, buf)).toBe(FragmentResult.Accepted);
    const [h2, junk] = fragment(5, Buffer.from('JUNKJUNKJUNKJ'), 2, 4);
    expect(r.add(h2, junk)).toBe(FragmentResult.Accepted);
    const m = r.take();
    expect(m?.body.toString()).toBe('whole message');
    expect(buf.toString()).toBe('whole message');
    expect(r.take()).toBeUndefined();
  });

  it('holds the next messages until the expected one is complete', () => {
    const r = new Reassembler(2, 1000, new ReassemblyBudget(1 << 20));
    expect(r.add(...fragment(3, Buffer.from('fin'), 0, 3, 20))).toBe(FragmentResult.Accepted);
    expect(r.take()).toBeUndefined();
    expect(r.add(...fragment(2, Buffer.from('cke'), 0, 3))).toBe(FragmentResult.Accepted);
    expect(r.take()?.type).toBe(16);
    expect(r.take()?.type).toBe(20);
    expect(r.take()).toBeUndefined();
  });

  it('refuses messages over the cap, too far ahead, or inconsistent with earlier fragments', () => {
    const r = new Reassembler(0, 16, new ReassemblyBudget(1 << 20));
    expect(r.add(...fragment(0, Buffer.alloc(17), 0, 4))).toBe(FragmentResult.Refused);
    expect(r.add(...fragment(9, Buffer.alloc(4), 0, 4))).toBe(FragmentResult.Refused);
    expect(r.add(...fragment(0, Buffer.alloc(8), 0, 4))).toBe(FragmentResult.Accepted);
    expect(r.add(...fragment(0, Buffer.alloc(9), 4, 4))).toBe(FragmentResult.Refused);
    expect(r.add(...fragment(0, Buffer.alloc(8), 4, 4, 20))).toBe(FragmentResult.Refused);
  });

  it('holds only the bytes that arrived, charged to a shared budget that refuses what does not fit', () => {
    let full = 0;
    const budget = new ReassemblyBudget(120, () => full++);
    const a = new Reassembler(0, 4096, budget);
    const b = new Reassembler(0, 4096, budget);
    const body = Buffer.alloc(4000, 7);
    // A 4,000-byte claim with ten bytes near its end costs ten bytes, not 4,000.
    expect(a.add(...fragment(0, body, 3990, 10))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(10);
    // Overlapping and repeated bytes are charged once; runs that meet are joined.
    expect(a.add(...fragment(0, body, 3980, 15))).toBe(FragmentResult.Accepted);
    expect(a.add(...fragment(0, body, 3980, 15))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(20);
    // An out-of-order whole message is copied (not a view of its datagram) and charged.
    expect(b.add(...fragment(1, Buffer.alloc(50), 0, 50, 20))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(70);
    const cke = Buffer.alloc(60, 3);
    expect(b.add(...fragment(0, cke, 0, 55))).toBe(FragmentResult.Full);
    expect(full).toBe(1);
    expect(budget.used).toBe(70);
    expect(b.add(...fragment(0, cke, 0, 30))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(100);
    // Ending a handshake and taking a message give the bytes back.
    a.clear();
    expect(budget.used).toBe(80);
    expect(b.add(...fragment(0, cke, 30, 30))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(110);
    expect(b.take()?.body).toEqual(cke);
    expect(budget.used).toBe(50);
    expect(b.take()?.type).toBe(20);
    expect(budget.used).toBe(0);
  });

  it('joins runs in any order into the whole message, and refuses a message scattered into too many', () => {
    const budget = new ReassemblyBudget(1 << 20);
    const body = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
    const r = new Reassembler(0, 4096, budget);
    for (const at of [150, 10, 90, 50, 0, 120, 30, 170, 60])
      r.add(...fragment(0, body, at, Math.min(35, 200 - at)));
    expect(r.take()?.body).toEqual(body);
    expect(budget.used).toBe(0);
    const s = new Reassembler(0, 4096, budget);
    for (let i = 0; i < MAX_RUNS; i++)
      expect(s.add(...fragment(0, body, 10 * i, 1))).toBe(FragmentResult.Accepted);
    expect(s.add(...fragment(0, body, 195, 1))).toBe(FragmentResult.Refused);
    // Bytes that join an existing run are still welcome.
    expect(s.add(...fragment(0, body, 1, 5))).toBe(FragmentResult.Accepted);
  });
});

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

describe('session address keys', () => {
  it('keys an IPv4 address and port as one number, distinct for every address and port', () => {
    expect(addressKey('10.1.2.3', 5684)).toBe((((10 * 256 + 1) * 256 + 2) * 256 + 3) * 65536 + 5684);
    expect(addressKey('255.255.255.255', 65535)).toBe(2 ** 48 - 1);
    expect(addressKey('0.0.0.0', 0)).toBe(0);
    const seen = new Set<string | number>();
    for (const a of ['1.2.3.4', '1.2.34.4', '12.3.4.4', '1.23.4.4', '4.3.2.1'])
      for (const p of [1, 256, 5684]) seen.add(addressKey(a, p));
    expect(seen.size).toBe(15);
  });

  it('keys anything that is not a dotted quad as a string, which no IPv4 key equals', () => {
    for (const a of [
      '::1',
      '::ffff:1.2.3.4',
      'fe80::1%eth0',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '1.2.3.',
      '0001.2.3.4',
    ])
      expect(addressKey(a, 5684), a).toBe(`${a}/5684`);
  });
});
