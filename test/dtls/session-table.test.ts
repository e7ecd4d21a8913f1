/** The session table's address keys: a number for an IPv4 address and port, a string for anything else. */
import { describe, expect, it } from 'vitest';
import { addressKey } from '../../src/dtls/server/session-table.js';

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
