/**
 * The raw UDP and RADIUS building blocks: BCD ids, the counter rule, reply templates, the RADIUS request
 * authenticator (against packets the radius library signs), the IMEI check digit, client blocks, memory stores.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import radius from 'radius';
import { describe, expect, it } from 'vitest';
import { judgeCounter } from '../../src/udp/counter.js';
import { bcdDigits, frameCounter, frameId, payloadOffset, toBcd } from '../../src/udp/frame.js';
import { ReplyTemplate } from '../../src/udp/reply.js';
import {
  accountingResponse,
  AccountingRefusal,
  imeiOf,
  readAccountingRequest,
  verifyRequestAuthenticator,
} from '../../src/radius/accounting.js';
import { loadDictionaries } from '../../src/radius/dictionary.js';
import { RadiusClients } from '../../src/radius/clients.js';
import { MemoryFrameCounters } from '../../src/state/frame-counters.js';
import { MemoryRecentUplinks } from '../../src/state/recent-uplinks.js';
import { MemorySimTable } from '../../src/state/sim-table.js';
import { udpSchema } from '../../src/config/udp.js';

describe('frame fields', () => {
  it('reads BCD with filler, swapped BCD, ASCII and hex ids; refuses non-digits', () => {
    expect(bcdDigits(Buffer.from('3569380356438 09f'.replace(' ', ''), 'hex'), false)).toBe(
      '356938035643809',
    );
    expect(bcdDigits(Buffer.from('98942010', 'hex'), true)).toBe('89490201');
    expect(bcdDigits(Buffer.from('3a', 'hex'), false)).toBeUndefined();
    expect(bcdDigits(Buffer.from('1f23', 'hex'), false)).toBeUndefined();
    expect(toBcd('356938035643809', 8).toString('hex')).toBe('356938035643809f');
    const layout = udpSchema.parse({
      frame: {
        id: { offset: 1, length: 15, encoding: 'ascii', field: 'imei' },
        counter: { offset: 16, bytes: 4 },
      },
    }).frame;
    const f = Buffer.concat([
      Buffer.of(9),
      Buffer.from('356938035643809'),
      Buffer.from('0000012c', 'hex'),
      Buffer.from('p'),
    ]);
    expect(frameId(f, layout)).toBe('356938035643809');
    expect(frameCounter(f, layout)).toBe(300);
    expect(payloadOffset(layout)).toBe(20);
    expect(frameId(f.subarray(0, 10), layout)).toBeUndefined();
    expect(frameCounter(f.subarray(0, 18), layout)).toBeUndefined();
  });

  it('judges counters: new within the gap, duplicate, replay, restart, too far; wraps', () => {
    const r = { bits: 16, maxGap: 100 } as const;
    expect(judgeCounter(undefined, 7, r)).toBe('new');
    expect(judgeCounter(10, 11, r)).toBe('new');
    expect(judgeCounter(10, 110, r)).toBe('new');
    expect(judgeCounter(10, 111, r)).toBe('gap');
    expect(judgeCounter(10, 10, r)).toBe('duplicate');
    expect(judgeCounter(10, 9, r)).toBe('replay');
    expect(judgeCounter(5000, 4000, r)).toBe('replay');
    expect(judgeCounter(5000, 3, r)).toBe('reset');
    expect(judgeCounter(65535, 0, r)).toBe('new');
    expect(judgeCounter(65530, 40, r)).toBe('new');
    expect(judgeCounter(2 ** 32 - 1, 0, { bits: 32, maxGap: 16384 })).toBe('new');
  });

  it('renders reply templates', () => {
    const t = new ReplyTemplate('a1 counter tag length downlink');
    const tag = Buffer.from('0102030405060708', 'hex');
    expect(
      t.render({ counter: 0x1234, counterBytes: 2, tag, downlink: Buffer.from('hi') })?.toString('hex'),
    ).toBe('a11234010203040506070802' + '6869');
    expect(new ReplyTemplate('06 counter32').render({ counter: 7, counterBytes: 0 })?.toString('hex')).toBe(
      '0600000007',
    );
    expect(
      new ReplyTemplate('length downlink').render({
        counter: 0,
        counterBytes: 0,
        downlink: Buffer.alloc(256),
      }),
    ).toBeUndefined();
    expect(new ReplyTemplate('').empty).toBe(true);
    expect(() => udpSchema.parse({ reply: { ack: '06 nonsense' } })).toThrow(/reply template/);
    expect(() => udpSchema.parse({ unknownDevice: { reply: '15' } })).toThrow(/byte pattern/);
  });
});

describe('RADIUS accounting packets', () => {
  loadDictionaries();
  const secret = 'testing123';
  const request = (s = secret) =>
    radius.encode({
      code: 'Accounting-Request',
      identifier: 42,
      secret: s,
      attributes: [
        ['Acct-Status-Type', 'Start'],
        ['Framed-IP-Address', '10.45.0.7'],
        ['Calling-Station-Id', '+491701234567'],
        ['Vendor-Specific', 10415, [['3GPP-IMSI', '262019876543210']]],
        ['Vendor-Specific', 10415, [['3GPP-IMEISV', '3569380356438091']]],
      ],
    });

  it('verifies the request authenticator as MD5(code, id, length, 16 zeros, attributes, secret)', () => {
    const p = request();
    const expected = createHash('md5')
      .update(Buffer.concat([p.subarray(0, 4), Buffer.alloc(16), p.subarray(20), Buffer.from(secret)]))
      .digest();
    expect(p.subarray(4, 20)).toEqual(expected);
    expect(verifyRequestAuthenticator(p, Buffer.from(secret))).toBe(true);
    expect(verifyRequestAuthenticator(p, Buffer.from('wrong'))).toBe(false);
    const tampered = Buffer.from(p);
    tampered[tampered.length - 1] ^= 1;
    expect(verifyRequestAuthenticator(tampered, Buffer.from(secret))).toBe(false);
  });

  it('decodes the session, answers with a response authenticator radius.verify_response accepts', () => {
    const p = request();
    expect(readAccountingRequest(p, Buffer.from(secret))).toMatchObject({
      identifier: 42,
      status: 'start',
      framedIp: '10.45.0.7',
      msisdn: '491701234567',
      imsi: '262019876543210',
      imeisv: '3569380356438091',
    });
    const res = accountingResponse(p, Buffer.from(secret));
    expect(radius.verify_response({ request: p, response: res, secret })).toBe(true);
    expect(imeiOf('3569380356438091')).toBe('356938035643809');
  });

  it('refuses wrong secrets, other packet codes and malformed packets', () => {
    const reason = (p: Buffer) => {
      try {
        readAccountingRequest(p, Buffer.from(secret));
        return 'taken';
      } catch (e) {
        return (e as AccountingRefusal).reason;
      }
    };
    expect(reason(request('other'))).toBe('bad_authenticator');
    const access = Buffer.from(request());
    access[0] = 1;
    expect(reason(access)).toBe('not_accounting');
    expect(reason(Buffer.alloc(10))).toBe('malformed');
    const long = Buffer.from(request());
    long.writeUInt16BE(4000, 2);
    expect(reason(long)).toBe('malformed');
  });

  it('picks the most specific client block', () => {
    const clients = new RadiusClients(
      [
        { address: '10.0.0.0/8', secret: 'text:wide' },
        { address: '10.1.2.3', secret: 'hex:6e6172726f77' },
      ],
      '.',
    );
    expect(clients.secretFor('10.1.2.3')?.toString()).toBe('narrow');
    expect(clients.secretFor('::ffff:10.9.9.9')?.toString()).toBe('wide');
    expect(clients.secretFor('192.168.1.1')).toBeUndefined();
  });

  it('reads a client secret from secretFile, relative to the config folder, and says what is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-radius-'));
    try {
      writeFileSync(join(dir, 'pgw.secret'), 'text:from-file\n');
      const clients = new RadiusClients([{ address: '10.0.0.1', secretFile: 'pgw.secret' }], dir);
      expect(clients.secretFor('10.0.0.1')?.toString()).toBe('from-file');
      expect(() => new RadiusClients([{ address: '10.0.0.1', secretFile: 'missing' }], dir)).toThrow(
        /radius.clients 10.0.0.1: cannot read secretFile .*missing: ENOENT/,
      );
      writeFileSync(join(dir, 'bad.secret'), 'plain');
      expect(() => new RadiusClients([{ address: '10.0.0.1', secretFile: 'bad.secret' }], dir)).toThrow(
        /secret: a key is written hex:/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('memory stores', () => {
  it('frame counters refuse unknown devices past the cap and give back a failed claim', () => {
    let caps = 0;
    const c = new MemoryFrameCounters(1, () => caps++);
    const rule = { bits: 16, maxGap: 10 } as const;
    const a = c.claim('a', 1, 'h', rule);
    expect(a.verdict).toBe('new');
    expect(c.claim('b', 1, 'h', rule).verdict).toBe('full');
    expect(caps).toBe(1);
    const a2 = c.claim('a', 2, 'h2', rule);
    c.release('a', 2, 'h2', a2.previous);
    expect(c.claim('a', 2, 'h2', rule).verdict).toBe('new');
  });

  it('recent uplinks stay bounded', () => {
    let dropped = 0;
    const r = new MemoryRecentUplinks(4, (n) => (dropped += n));
    for (let i = 0; i < 10; i++) expect(r.seen('d', `h${i}`, 60_000)).toBe(false);
    expect(r.size).toBeLessThanOrEqual(4);
    expect(dropped).toBeGreaterThan(0);
    expect(r.seen('d', 'h9', 60_000)).toBe(true);
  });

  it('the IP → SIM table drops the oldest session at its cap and expired sessions', async () => {
    let evicted = 0;
    const t = new MemorySimTable(2, (n) => (evicted += n));
    await t.put('a', { updatedAt: 1 }, 60_000);
    await t.put('b', { updatedAt: 2 }, 60_000);
    await t.put('c', { updatedAt: 3 }, 1);
    expect(evicted).toBe(1);
    expect(t.get('a')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 5));
    expect(t.get('c')).toBeUndefined();
    expect(t.get('b')).toBeDefined();
  });
});
