/**
 * A SigV4 (AWS4-HMAC-SHA256) verifier written from the AWS signing specification, independent of the SDK's
 * signer: canonical request (method, double-encoded normalised path, sorted re-encoded query, signed headers
 * with trimmed values, payload hash), string to sign, derived signing key, constant-time comparison.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests must carry it in `x-amz-security-token`. */
  sessionToken?: string;
}

export interface SignedRequest {
  method: string;
  /** Request target as sent: path and query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface VerifyOptions {
  credentials: ReadonlyMap<string, Credential>;
  region: string;
  service: string;
  now?: Date;
  /** Largest accepted difference between `x-amz-date` and now. */
  maxSkewMs?: number;
}

export type VerifyResult =
  { ok: true; accessKeyId: string } | { ok: false; status: number; code: string; message: string };

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** How each byte is written in a URI-encoded string: itself when unreserved, else %XX. */
const BYTE_ENCODING = Array.from({ length: 256 }, (_, b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** RFC 3986 encoding of every UTF-8 byte outside the unreserved set, upper-case hex. */
export function uriEncode(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) out += BYTE_ENCODING[byte];
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The canonical URI for services other than S3: normalised segments, each encoded again. */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(uriEncode(seg));
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return `/${segments.join('/')}${trailing}`;
}

export function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncode(decode(k)), uriEncode(decode(v))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
}

const sha256hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

const keyCache = new Map<string, Buffer>();

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\n${date}\n${region}\n${service}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    const kDate = createHmac('sha256', `AWS4${secret}`).update(date).digest();
    const kRegion = createHmac('sha256', kDate).update(region).digest();
    const kService = createHmac('sha256', kRegion).update(service).digest();
    key = createHmac('sha256', kService).update('aws4_request').digest();
    if (keyCache.size > 64) keyCache.clear();
    keyCache.set(cacheKey, key);
  }
  return key;
}

function deny(code: string, message: string, status = 403): VerifyResult {
  return { ok: false, status, code, message };
}

/** Checks a request's SigV4 signature; says why when it does not hold. */
export function verifySigV4(req: SignedRequest, opts: VerifyOptions): VerifyResult {
  const auth = headerValue(req.headers, 'authorization');
  if (!auth) return deny('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH_RE.exec(auth);
  if (!m) return deny('IncompleteSignatureException', 'Authorization header is not a SigV4 header');
  const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = m;
  const cred = opts.credentials.get(accessKeyId);
  if (!cred)
    return deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (
    cred.sessionToken !== undefined &&
    headerValue(req.headers, 'x-amz-security-token') !== cred.sessionToken
  )
    return deny('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (region !== opts.region)
    return deny(
      'InvalidSignatureException',
      `Credential should be scoped to a valid region '${opts.region}'`,
    );
  if (service !== opts.service)
    return deny(
      'InvalidSignatureException',
      `Credential should be scoped to correct service: '${opts.service}'`,
    );

  const amzDate = headerValue(req.headers, 'x-amz-date');
  const dm = amzDate ? DATE_RE.exec(amzDate) : null;
  if (!amzDate || !dm) return deny('IncompleteSignatureException', 'x-amz-date is missing or malformed');
  if (amzDate.slice(0, 8) !== scopeDate)
    return deny('InvalidSignatureException', 'Credential scope date does not match x-amz-date');
  const signedAt = Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]);
  const now = (opts.now ?? new Date()).getTime();
  if (Math.abs(now - signedAt) > (opts.maxSkewMs ?? 15 * 60_000))
    return deny(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier or later than the allowed window`,
    );

  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host'))
    return deny('InvalidSignatureException', "'Host' must be a signed header");
  const headerLines: string[] = [];
  for (const name of signedHeaders) {
    const v = headerValue(req.headers, name);
    if (v === undefined) return deny('InvalidSignatureException', `signed header ${name} is missing`);
    headerLines.push(`${name}:${v}\n`);
  }

  const payloadHash = sha256hex(req.body);
  const claimed = headerValue(req.headers, 'x-amz-content-sha256');
  if (claimed !== undefined && claimed !== payloadHash)
    return deny('InvalidSignatureException', 'x-amz-content-sha256 does not match the body', 400);

  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const canonical = [
    req.method,
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    headerLines.join(''),
    signedHeaderList,
    payloadHash,
  ].join('\n');
  const scope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256hex(canonical)}`;
  const expected = createHmac('sha256', signingKey(cred.secretAccessKey, scopeDate, region, service))
    .update(stringToSign)
    .digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex')))
    return deny(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided.',
    );
  return { ok: true, accessKeyId };
}
