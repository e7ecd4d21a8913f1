/**
 * RADIUS Accounting-Requests (RFC 2866) as the gateway's RADIUS listener reads them from the carrier's
 * network: `readAccountingRequest` refuses with an AccountingRefusal or returns a record, never throws
 * anything else, also for broken attributes behind a valid authenticator (mutated packets are re-signed
 * with the shared secret, their length field fixed or not). Packets encoded from random session fields by
 * the codec library read back as those fields.
 */
import fc from 'fast-check';
import radius from 'radius';
import {
  AccountingRefusal,
  readAccountingRequest,
  signRequest,
  type AccountingRecord,
} from '../../../src/radius/accounting.js';
import { loadDictionaries } from '../../../src/radius/dictionary.js';
import { fail, hexFile, must, mutatedSeed, onlyThrows, randomBytes, type FuzzTarget } from '../target.js';

export const RADIUS_SECRET = 'fuzzing-secret';
const secret = Buffer.from(RADIUS_SECRET);

export interface RadiusInput {
  packet: Buffer;
  /** Write the header length from the packet's size before signing. */
  fixLength: boolean;
  /** Sign with the shared secret (else the authenticator is whatever the bytes hold). */
  sign: boolean;
  /** What the packet was encoded from. */
  built?: Omit<AccountingRecord, 'status'> & { status: 'start' | 'stop' | 'interim' };
}

const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
const STATUS = { start: 'Start', stop: 'Stop', interim: 'Interim-Update' } as const;

const builtArbitrary: fc.Arbitrary<RadiusInput> = fc
  .record(
    {
      identifier: fc.nat(255),
      status: fc.constantFrom('start', 'stop', 'interim') as fc.Arbitrary<'start' | 'stop' | 'interim'>,
      framedIp: fc.ipV4(),
      userName: fc.stringMatching(/^[a-z0-9.@-]{1,30}$/),
      msisdn: digits(5, 15),
      imsi: digits(15, 15),
      imeisv: digits(16, 16),
      sessionId: fc.stringMatching(/^[A-F0-9]{8,16}$/),
    },
    { requiredKeys: ['identifier', 'status'] },
  )
  .map((built) => {
    loadDictionaries();
    const attributes: unknown[] = [['Acct-Status-Type', STATUS[built.status]]];
    if (built.framedIp) attributes.push(['Framed-IP-Address', built.framedIp]);
    if (built.userName) attributes.push(['User-Name', built.userName]);
    if (built.msisdn) attributes.push(['Calling-Station-Id', `+${built.msisdn}`]);
    if (built.sessionId) attributes.push(['Acct-Session-Id', built.sessionId]);
    if (built.imsi) attributes.push(['Vendor-Specific', 10415, [['3GPP-IMSI', built.imsi]]]);
    if (built.imeisv) attributes.push(['Vendor-Specific', 10415, [['3GPP-IMEISV', built.imeisv]]]);
    const packet = radius.encode({
      code: 'Accounting-Request',
      identifier: built.identifier,
      secret: RADIUS_SECRET,
      attributes,
    });
    return { packet, fixLength: false, sign: false, built };
  });

export const radiusAccounting: FuzzTarget<RadiusInput> = {
  name: 'radius-accounting',
  description: 'readAccountingRequest: a record or an AccountingRefusal, also behind a valid authenticator',
  shortRuns: 2000,
  seed: (file) => ({ packet: hexFile(file), fixLength: false, sign: true }),
  arbitrary: (seeds) =>
    fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          packet: mutatedSeed(seeds.map((s) => s.packet)),
          fixLength: fc.boolean(),
          sign: fc.oneof(
            { weight: 4, arbitrary: fc.constant(true) },
            { weight: 1, arbitrary: fc.constant(false) },
          ),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ packet: randomBytes(80), fixLength: fc.boolean(), sign: fc.boolean() }),
      },
      { weight: 2, arbitrary: builtArbitrary },
    ),
  check({ packet, fixLength, sign, built }) {
    let p: Buffer = Buffer.from(packet);
    if (fixLength && p.length >= 4) p.writeUInt16BE(Math.min(p.length, 0xffff), 2);
    if (sign && p.length >= 20) p = signRequest(p, secret);
    const r = onlyThrows(
      () => readAccountingRequest(p, secret),
      (e) => e instanceof AccountingRefusal,
      'readAccountingRequest',
    );
    if (!r) {
      if (built) fail('a built Accounting-Request was refused');
      return;
    }
    must(r.identifier === p[1], 'the identifier is the header byte');
    for (const id of [r.msisdn, r.imsi, r.imeisv])
      must(id === undefined || /^[0-9]{1,20}$/.test(id), 'digits');
    if (!built) return;
    for (const k of Object.keys(built) as (keyof AccountingRecord)[])
      must(r[k] === built[k], `${k}: ${String(r[k])} for ${String(built[k])}`);
  },
};
