/**
 * Verifies AWS Signature Version 4 (AWS4-HMAC-SHA256, `Authorization` header) on incoming HTTP requests,
 * written from the AWS signing specification, independent of the SDKs' signers: canonical request (method,
 * normalised and twice-encoded path, sorted re-encoded query, signed headers with trimmed values, payload
 * hash), string to sign, derived signing key, constant-time comparison, a bound on clock skew, and session
 * tokens. The admin API accepts the AWS CLI and SDKs with it; the IoT Data Plane test server checks its
 * clients with it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests must carry it in `x-amz-security-token`. */
  sessionToken?: string;
}

export interface SigV4Request {
  method: string;
  /** Request target as received: path and query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface SigV4Options {
  /** The accepted credentials by access key id. */
  credentials: ReadonlyMap<string, Credential>;
  /** Service name in the credential scope (`iotdata` for the IoT Data Plane). */
  service: string;
  /** Region the credential scope must name; any region when unset. */
  region?: string;
  now?: number | Date;
  /** Largest accepted difference between `x-amz-date` and now (default 15 minutes). */
  maxSkewMs?: number;
}

export type SigV4Result =
  { ok: true; accessKeyId: string } | { ok: false; status: number; code: string; message: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function fail(status: number, code: string, message: string): SigV4Result {
  return { ok: false, status, code, message };
}

/** How each byte is written in a URI-encoded string: itself when unreserved, else %XX. */
const BYTE_ENCODING = Array.from({ length: 256 }, (_, b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** RFC 3986 encoding: every UTF-8 byte outside A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex). */
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

/** Canonical URI (every service but S3): dot segments removed, each segment encoded once more. */
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

/** Canonical query: parameters decoded, encoded again, sorted by name then value. */
export function canonicalQuery(rawQuery: string): string {
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

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

const keyCache = new Map<string, Buffer>();

/** The derived signing key (cached: it changes once a day per credential, region and service). */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${secret}\n${date}\n${region}\n${service}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
    if (keyCache.size >= 64) keyCache.clear();
    keyCache.set(cacheKey, key);
  }
  return key;
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

interface Authorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(value: string): Authorization | undefined {
  if (!value.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential')?.split('/');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || credential.length !== 5 || !signedHeaders || !signature) return undefined;
  if (!/^[0-9a-f]{64}$/.test(signature)) return undefined;
  const [accessKeyId, date, region, service, terminator] = credential;
  return {
    accessKeyId,
    date,
    region,
    service,
    terminator,
    signedHeaders: signedHeaders.split(';'),
    signature,
  };
}

export function verifySigV4(req: SigV4Request, opts: SigV4Options): SigV4Result {
  const header = headerValue(req.headers, 'authorization');
  if (!header) return fail(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  const auth = parseAuthorization(header);
  if (!auth)
    return fail(403, 'IncompleteSignatureException', 'The Authorization header is not a SigV4 signature');
  const cred = opts.credentials.get(auth.accessKeyId);
  if (
    cred === undefined ||
    (cred.sessionToken !== undefined &&
      headerValue(req.headers, 'x-amz-security-token') !== cred.sessionToken)
  )
    return fail(403, 'UnrecognizedClientException', 'The security token included in the request is invalid');
  if (auth.service !== opts.service || auth.terminator !== 'aws4_request')
    return fail(403, 'InvalidSignatureException', `Credential scope must name service ${opts.service}`);
  if (opts.region !== undefined && auth.region !== opts.region)
    return fail(403, 'InvalidSignatureException', `Credential should be scoped to region ${opts.region}`);
  const amzDate = headerValue(req.headers, 'x-amz-date');
  const m = amzDate ? AMZ_DATE.exec(amzDate) : null;
  if (!amzDate || !m) return fail(403, 'IncompleteSignatureException', 'Missing or malformed X-Amz-Date');
  if (amzDate.slice(0, 8) !== auth.date)
    return fail(403, 'InvalidSignatureException', 'Credential scope date does not match X-Amz-Date');
  const signedAt = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  const now = opts.now === undefined ? Date.now() : Number(opts.now);
  if (Math.abs(now - signedAt) > (opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS))
    return fail(403, 'InvalidSignatureException', 'Signature expired: the request time is too far from now');
  if (!auth.signedHeaders.includes('host'))
    return fail(403, 'InvalidSignatureException', 'The host header must be signed');

  const bodyHash = sha256Hex(req.body);
  const claimed = headerValue(req.headers, 'x-amz-content-sha256');
  if (claimed !== undefined && claimed !== bodyHash)
    return fail(400, 'InvalidSignatureException', 'X-Amz-Content-Sha256 does not match the body');

  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  let canonicalHeaders = '';
  for (const name of auth.signedHeaders) {
    const v = headerValue(req.headers, name);
    if (v === undefined) return fail(403, 'InvalidSignatureException', `Signed header ${name} is missing`);
    canonicalHeaders += `${name}:${v}\n`;
  }
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    canonicalHeaders,
    auth.signedHeaders.join(';'),
    claimed ?? bodyHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const expected = hmac(signingKey(cred.secretAccessKey, auth.date, auth.region, auth.service), stringToSign);
  const given = Buffer.from(auth.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return fail(
      403,
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided',
    );
  return { ok: true, accessKeyId: auth.accessKeyId };
}
