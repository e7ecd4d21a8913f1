import { createHash } from 'node:crypto';
import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { describe, expect, it } from 'vitest';
import {
  canonicalQuery,
  canonicalUri,
  uriEncode,
  verifySigV4,
  type Credential,
} from '../../src/ops/sigv4.js';

// The AWS SigV4 test suite's credentials, date and scope.
const SUITE: Credential = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const suiteOpts = {
  credentials: new Map([[SUITE.accessKeyId, SUITE]]),
  region: 'us-east-1',
  service: 'service',
  now: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)),
};

function suiteRequest(url: string, signature: string) {
  return {
    method: 'GET',
    url,
    headers: {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    },
    body: Buffer.alloc(0),
  };
}

describe('SigV4 verifier (test server)', () => {
  it('accepts the AWS test suite vectors get-vanilla and get-vanilla-query-order-key-case', () => {
    expect(
      verifySigV4(
        suiteRequest('/', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'),
        suiteOpts,
      ),
    ).toEqual({ ok: true, accessKeyId: 'AKIDEXAMPLE' });
    expect(
      verifySigV4(
        suiteRequest(
          '/?Param2=value2&Param1=value1',
          'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
        ),
        suiteOpts,
      ).ok,
    ).toBe(true);
  });

  it('rejects a changed signature, path, query, key, scope or time', () => {
    const good = '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31';
    const bad = (r: ReturnType<typeof suiteRequest>, opts = suiteOpts) => verifySigV4(r, opts);
    expect(bad(suiteRequest('/', good.replace(/^5/, '6')))).toMatchObject({
      ok: false,
      code: 'InvalidSignatureException',
    });
    expect(bad(suiteRequest('/x', good))).toMatchObject({ ok: false, code: 'InvalidSignatureException' });
    expect(bad(suiteRequest('/?a=1', good))).toMatchObject({ ok: false });
    expect(bad(suiteRequest('/', good), { ...suiteOpts, credentials: new Map() })).toMatchObject({
      code: 'UnrecognizedClientException',
    });
    expect(bad(suiteRequest('/', good), { ...suiteOpts, region: 'eu-west-1' })).toMatchObject({ ok: false });
    expect(bad(suiteRequest('/', good), { ...suiteOpts, service: 'iotdata' })).toMatchObject({ ok: false });
    expect(
      bad(suiteRequest('/', good), { ...suiteOpts, now: new Date(Date.UTC(2015, 7, 30, 13, 0, 0)) }),
    ).toMatchObject({
      ok: false,
      message: expect.stringMatching(/Signature expired/),
    });
    const noAuth = suiteRequest('/', good);
    delete (noAuth.headers as Record<string, string>).authorization;
    expect(bad(noAuth)).toMatchObject({ code: 'MissingAuthenticationTokenException' });
  });

  it('canonicalises paths, queries and encodings as the specification says', () => {
    expect(uriEncode('a b/ü~*')).toBe('a%20b%2F%C3%BC~%2A');
    expect(canonicalUri('/topics/a%2Fb')).toBe('/topics/a%252Fb');
    expect(canonicalUri('/a/./b/../c//d/')).toBe('/a/c/d/');
    expect(canonicalQuery('b=2&a=1&a=0&c')).toBe('a=0&a=1&b=2&c=');
    expect(canonicalQuery('k=a%20b')).toBe('k=a%20b');
  });

  it("accepts what the SDK's signer signs, including a session token, and rejects a tampered body", async () => {
    const cred = {
      accessKeyId: 'AKIDTEMP',
      secretAccessKey: 'temp/secret+key',
      sessionToken: 'session-token',
    };
    const client = new IoTDataPlaneClient({ region: 'eu-west-1', credentials: cred });
    const signer = await client.config.signer();
    const body = Buffer.from('{"hello":"world"}');
    const signed = (await signer.sign({
      method: 'POST',
      protocol: 'https:',
      hostname: 'example-ats.iot.eu-west-1.amazonaws.com',
      path: '/topics/a%2Fb%20c',
      query: { qos: '1', contentType: 'application/json' },
      headers: {
        host: 'example-ats.iot.eu-west-1.amazonaws.com',
        'content-type': 'application/octet-stream',
      },
      body,
    } as unknown as Parameters<typeof signer.sign>[0])) as unknown as { headers: Record<string, string> };
    client.destroy();
    const opts = {
      credentials: new Map([[cred.accessKeyId, cred]]),
      region: 'eu-west-1',
      service: 'iotdata',
    };
    const req = {
      method: 'POST',
      url: '/topics/a%2Fb%20c?qos=1&contentType=application%2Fjson',
      headers: signed.headers,
      body,
    };
    expect(verifySigV4(req, opts).ok).toBe(true);
    expect(createHash('sha256').update(body).digest('hex')).toBe(signed.headers['x-amz-content-sha256']);
    expect(verifySigV4({ ...req, body: Buffer.from('{"hello":"there"}') }, opts).ok).toBe(false);
    const noToken = { ...signed.headers };
    delete noToken['x-amz-security-token'];
    expect(verifySigV4({ ...req, headers: noToken }, opts)).toMatchObject({
      code: 'UnrecognizedClientException',
    });
  });
});
