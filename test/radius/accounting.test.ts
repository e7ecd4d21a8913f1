/**
 * RADIUS accounting packets: the request authenticator (against packets the radius library signs), the session
 * they carry, the IMEI, and the packets refused.
 */
import { createHash } from 'node:crypto';
import radius from 'radius';
import { describe, expect, it } from 'vitest';
import {
  accountingResponse,
  AccountingRefusal,
  imeiOf,
  readAccountingRequest,
  verifyRequestAuthenticator,
} from '../../src/radius/accounting.js';
import { loadDictionaries } from '../../src/radius/dictionary.js';

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
});
