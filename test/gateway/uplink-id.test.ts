/** The envelope messageId: the same for every transmission of a request, different for any other request. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Code } from '../../src/coap/constants.js';
import { exchangeKey, uplinkMessageId, type UplinkIdentity } from '../../src/gateway/uplink-id.js';

const base: UplinkIdentity = {
  peerKey: 'dtls:AbCdEfGhIjKl',
  deviceId: 'meter-0001',
  method: Code.POST,
  path: 'telemetry',
  coapMessageId: 0x1234,
  token: Buffer.from('0102030405060708', 'hex'),
};
const body = Buffer.from('{"t":21.5}');

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uplinkMessageId', () => {
  it('is a UUID (version 8) that a retransmission reproduces exactly', () => {
    const id = uplinkMessageId(base, body);
    expect(id).toMatch(UUID_V8);
    // What another replica computes from the same datagram: fresh objects, same values.
    expect(uplinkMessageId({ ...base, token: Buffer.from(base.token) }, Buffer.from(body))).toBe(id);
  });

  it('changes with every field a new request changes', () => {
    const id = uplinkMessageId(base, body);
    const variants: [string, UplinkIdentity, Buffer][] = [
      ['peer', { ...base, peerKey: 'dtls:ZZZZZZZZZZZZ' }, body],
      ['device', { ...base, deviceId: 'meter-0002' }, body],
      ['method', { ...base, method: Code.PUT }, body],
      ['path', { ...base, path: 'telemetry2' }, body],
      ['message id', { ...base, coapMessageId: 0x1235 }, body],
      ['token', { ...base, token: Buffer.from('0102030405060709', 'hex') }, body],
      ['empty token', { ...base, token: Buffer.alloc(0) }, body],
      ['body', base, Buffer.from('{"t":21.6}')],
      ['empty body', base, Buffer.alloc(0)],
    ];
    const ids = new Set([id]);
    for (const [what, u, b] of variants) {
      const other = uplinkMessageId(u, b);
      expect(other, what).toMatch(UUID_V8);
      expect(other, what).not.toBe(id);
      ids.add(other);
    }
    expect(ids.size).toBe(variants.length + 1);
  });

  it('keeps fields apart: moving bytes from one field to the next gives another id', () => {
    const a = uplinkMessageId({ ...base, peerKey: 'udp:1.2.3.4:5', deviceId: '6dev' }, body);
    const b = uplinkMessageId({ ...base, peerKey: 'udp:1.2.3.4:56', deviceId: 'dev' }, body);
    expect(a).not.toBe(b);
    const c = uplinkMessageId({ ...base, path: 'a', token: Buffer.from('b') }, Buffer.from('c'));
    const d = uplinkMessageId({ ...base, path: 'a', token: Buffer.alloc(0) }, Buffer.from('bc'));
    expect(c).not.toBe(d);
  });

  it('only the Message ID differs between two readings of a counter that did not change', () => {
    // A device that sends the same reading twice (a new request each time) gets two ids.
    const first = uplinkMessageId({ ...base, coapMessageId: 1, token: Buffer.alloc(0) }, body);
    const second = uplinkMessageId({ ...base, coapMessageId: 2, token: Buffer.alloc(0) }, body);
    expect(first).not.toBe(second);
  });

  it('hashes large and non-ASCII inputs the same way whatever their size (independent SHA-256)', () => {
    const big = Buffer.alloc(70_000, 0xa5);
    const u = { ...base, deviceId: 'zähler-Ω', path: 'große/datei' };
    // The same construction, written out independently.
    const str = (s: string) => {
      const b = Buffer.from(s, 'utf8');
      const n = Buffer.alloc(2);
      n.writeUInt16BE(b.length);
      return Buffer.concat([n, b]);
    };
    const expected = (payload: Buffer) => {
      const tail = Buffer.alloc(3);
      tail.writeUInt16BE(u.coapMessageId);
      tail.writeUInt8(u.token.length, 2);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(payload.length);
      const d = createHash('sha256')
        .update(Buffer.from([1]))
        .update(str(u.peerKey))
        .update(str(u.deviceId))
        .update(str(u.path))
        .update(Buffer.from([u.method]))
        .update(tail)
        .update(u.token)
        .update(len)
        .update(payload)
        .digest('hex');
      const variant = ((parseInt(d[16], 16) & 3) | 8).toString(16);
      return `${d.slice(0, 8)}-${d.slice(8, 12)}-8${d.slice(13, 16)}-${variant}${d.slice(17, 20)}-${d.slice(20, 32)}`;
    };
    expect(uplinkMessageId(u, big)).toBe(expected(big));
    expect(uplinkMessageId(u, body)).toBe(expected(body));
  });
});

describe('exchangeKey', () => {
  it('names the exchange of a last block: stable, and apart from the message id', () => {
    const k = exchangeKey(base, body);
    expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(exchangeKey({ ...base }, Buffer.from(body))).toBe(k);
    expect(exchangeKey({ ...base, coapMessageId: 7 }, body)).not.toBe(k);
    expect(uplinkMessageId(base, body).replace(/-/g, '')).not.toContain(k.slice(0, 8));
  });
});
