/**
 * The IoT Data Plane `Publish` call on the wire: `POST /topics/{topic}?qos=…&contentType=…` with the payload
 * as body and MQTT 5 user properties in `x-amz-mqtt5-user-properties` (base64 of a JSON list of one-key
 * objects), and how its error answers map to failure kinds.
 */
import type { FailureKind } from './delivery.js';

/** Percent-encodes every character outside RFC 3986's unreserved set (so `/` becomes %2F). */
export function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The request path of a publish to `topic`. */
export function publishPath(topic: string): string {
  return `/topics/${encodeRfc3986(topic)}`;
}

/** The value of `x-amz-mqtt5-user-properties` for these properties, in order. */
export function userPropertiesHeader(props: readonly (readonly [string, string])[]): string {
  let json = '[';
  for (let i = 0; i < props.length; i++) {
    if (i > 0) json += ',';
    json += `{${JSON.stringify(props[i][0])}:${JSON.stringify(props[i][1])}}`;
  }
  return Buffer.from(`${json}]`).toString('base64');
}

/** AWS error codes that mean the request was signed with a clock too far off. */
const CLOCK_SKEW_CODES = new Set([
  'AuthFailure',
  'InvalidSignatureException',
  'RequestExpired',
  'RequestInTheFuture',
  'RequestTimeTooSkewed',
  'SignatureDoesNotMatch',
]);

export function isClockSkewCode(code: string): boolean {
  return CLOCK_SKEW_CODES.has(code);
}

/** The error code of an AWS JSON error answer: the `x-amzn-errortype` header, else `__type` or `code`. */
export function errorCode(headerValue: string | undefined, body: string): { code: string; message: string } {
  let code = headerValue ? headerValue.split(':')[0] : '';
  let message = '';
  if (body.length > 0 && body[0] === '{') {
    try {
      const doc = JSON.parse(body) as Record<string, unknown>;
      if (!code && typeof doc.__type === 'string') code = doc.__type.split('#').pop() ?? '';
      if (!code && typeof doc.code === 'string') code = doc.code;
      const m = doc.message ?? doc.Message;
      if (typeof m === 'string') message = m;
    } catch {
      message = body.slice(0, 200);
    }
  } else {
    message = body.slice(0, 200);
  }
  return { code, message };
}

/** What kind of failure an HTTP error answer is. */
export function failureKind(status: number, code: string): FailureKind {
  if (status === 429 || code === 'ThrottlingException') return 'throttled';
  if (status >= 500) return 'server';
  if (status === 408) return 'timeout';
  if (status === 401 || status === 403) return 'auth';
  return 'rejected';
}

/** The AWS region in an IoT endpoint host name (`…iot.<region>.amazonaws.com[.cn]`), if there is one. */
export function regionOfEndpoint(host: string): string | undefined {
  return /\.iot\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1];
}
