/** The SigV4 verifier against the AWS Signature Version 4 test suite's vectors, and tampered requests. */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AdminAuth, isLoopback } from '../../src/ops/admin-auth.js';
import { adminSchema } from '../../src/config/admin.js';
import { canonicalQuery, canonicalUri, verifySigV4, type SigV4Request } from '../../src/ops/sigv4.js';

const CREDENTIALS = new Map([
  [
    'AKIDEXAMPLE',
    { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  ],
]);
const NOW = Date.UTC(2015, 7, 30, 12, 36, 0);
const opts = { credentials: CREDENTIALS, service: 'service', now: NOW };

function vector(method: string, url: string, signature: string): SigV4Request {
  return {
    method,
    url,
    body: Buffer.alloc(0),
    headers: {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        `SignedHeaders=host;x-amz-date, Signature=${signature}`,
    },
  };
}

const GET_VANILLA = vector('GET', '/', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
const QUERY_ORDER = vector(
  'GET',
  '/?Param2=value2&Param1=value1',
  'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
);
const POST_VANILLA = vector('POST', '/', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b');

function refused(req: SigV4Request, o = opts): string {
  const r = verifySigV4(req, o);
  if (r.ok) throw new Error('expected a refusal');
  return `${r.status} ${r.code}: ${r.message}`;
}

describe('SigV4 verification', () => {
  it('accepts the test suite vectors get-vanilla, get-vanilla-query-order-key-case, post-vanilla', () => {
    for (const v of [GET_VANILLA, QUERY_ORDER, POST_VANILLA])
      expect(verifySigV4(v, opts)).toEqual({ ok: true, accessKeyId: 'AKIDEXAMPLE' });
  });

  it('canonicalises paths and queries as the specification says', () => {
    expect(canonicalUri('/things/my%3Athing/shadow')).toBe('/things/my%253Athing/shadow');
    expect(canonicalUri('/a/./b/../c/')).toBe('/a/c/');
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalQuery('b=2&a=%20x&a=1&c')).toBe('a=%20x&a=1&b=2&c=');
    expect(canonicalQuery("k=it's*")).toBe('k=it%27s%2A');
  });

  it('refuses a changed method, path, query, body or signed header', () => {
    expect(refused({ ...GET_VANILLA, method: 'DELETE' })).toMatch(/^403 InvalidSignatureException/);
    expect(refused({ ...GET_VANILLA, url: '/other' })).toMatch(/does not match/);
    expect(refused({ ...QUERY_ORDER, url: '/?Param2=value2&Param1=value3' })).toMatch(/does not match/);
    expect(refused({ ...POST_VANILLA, body: Buffer.from('x') })).toMatch(/does not match/);
    expect(
      refused({ ...GET_VANILLA, headers: { ...GET_VANILLA.headers, host: 'evil.example.com' } }),
    ).toMatch(/does not match/);
  });

  it('refuses an unknown key, another service, a stale or future date, a missing date', () => {
    expect(refused(GET_VANILLA, { ...opts, credentials: new Map() })).toMatch(/^403 UnrecognizedClient/);
    expect(refused(GET_VANILLA, { ...opts, service: 'iotdata' })).toMatch(/service iotdata/);
    expect(refused(GET_VANILLA, { ...opts, now: NOW + 16 * 60_000 })).toMatch(/too far from now/);
    expect(refused(GET_VANILLA, { ...opts, now: NOW - 16 * 60_000 })).toMatch(/too far from now/);
    const { 'x-amz-date': _d, ...noDate } = GET_VANILLA.headers;
    expect(refused({ ...GET_VANILLA, headers: noDate })).toMatch(/X-Amz-Date/);
  });

  it('refuses malformed authorization and unsigned host', () => {
    const h = (authorization: string): IncomingHttpHeaders => ({ ...GET_VANILLA.headers, authorization });
    expect(refused({ ...GET_VANILLA, headers: h('Basic abc') })).toMatch(/not a SigV4/);
    expect(refused({ ...GET_VANILLA, headers: h('AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x') })).toMatch(
      /not a SigV4/,
    );
    expect(
      refused({
        ...GET_VANILLA,
        headers: h(
          'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=' +
            '0'.repeat(64),
        ),
      }),
    ).toMatch(/host header must be signed/);
    const { authorization: _a, ...none } = GET_VANILLA.headers;
    expect(refused({ ...GET_VANILLA, headers: none })).toMatch(/^403 MissingAuthenticationToken/);
    expect(
      refused({
        ...POST_VANILLA,
        headers: { ...POST_VANILLA.headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      }),
    ).toMatch(/does not match the body/);
  });
});

function fakeRequest(remoteAddress: string, authorization?: string): IncomingMessage {
  return {
    method: 'GET',
    url: '/things/t/commands',
    headers: authorization ? { authorization, host: 'localhost' } : { host: 'localhost' },
    socket: { remoteAddress },
  } as unknown as IncomingMessage;
}

describe('admin API authorization', () => {
  it('without credentials configured: loopback only', () => {
    const auth = new AdminAuth(adminSchema.parse({}));
    expect(auth.required).toBe(false);
    expect(auth.check(fakeRequest('127.0.0.1'), Buffer.alloc(0)).ok).toBe(true);
    expect(auth.check(fakeRequest('::1'), Buffer.alloc(0)).ok).toBe(true);
    expect(auth.check(fakeRequest('::ffff:127.0.0.1'), Buffer.alloc(0)).ok).toBe(true);
    const r = auth.check(fakeRequest('10.1.2.3'), Buffer.alloc(0));
    expect(r).toMatchObject({ ok: false, status: 403, code: 'ForbiddenException' });
    expect(isLoopback('128.0.0.1')).toBe(false);
    expect(isLoopback(undefined)).toBe(false);
  });

  it('with a token: every client must present it, loopback included', () => {
    const auth = new AdminAuth(adminSchema.parse({ token: 's3cret' }));
    expect(auth.check(fakeRequest('10.1.2.3', 'Bearer s3cret'), Buffer.alloc(0)).ok).toBe(true);
    expect(auth.check(fakeRequest('127.0.0.1'), Buffer.alloc(0))).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(fakeRequest('127.0.0.1', 'Bearer wrong'), Buffer.alloc(0))).toMatchObject({
      ok: false,
      status: 401,
    });
    // A SigV4 signature is not accepted when no access key is configured.
    expect(
      auth.check(fakeRequest('127.0.0.1', GET_VANILLA.headers.authorization), Buffer.alloc(0)),
    ).toMatchObject({
      ok: false,
      status: 401,
    });
  });

  it('refuses half-configured SigV4 credentials and unreadable files', () => {
    expect(() => new AdminAuth(adminSchema.parse({ sigv4: { accessKeyId: 'AK' } }))).toThrow(
      /without a secret/,
    );
    expect(() => new AdminAuth(adminSchema.parse({ sigv4: { secretAccessKey: 'x' } }))).toThrow(
      /no accessKeyId/,
    );
    expect(() => new AdminAuth(adminSchema.parse({ tokenFile: '/nonexistent/token' }))).toThrow(
      /cannot read/,
    );
  });
});
