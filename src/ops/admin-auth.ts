/**
 * Who may call the admin API. With neither a bearer token nor a SigV4 access key configured, only requests
 * from the loopback address are served (bind the HTTP port to 127.0.0.1, or reach it through
 * `kubectl port-forward`). With either configured, every request must present one of them:
 * `Authorization: Bearer <token>`, or a SigV4 signature made with the access key (what the AWS CLI sends).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AdminConfig } from '../config/admin.js';
import { ConfigError } from '../config/errors.js';
import { verifySigV4, type Credential } from './sigv4.js';

export type AuthResult = { ok: true } | { ok: false; status: number; code: string; message: string };

/** The IoT Data Plane's SigV4 service name: the AWS CLI's `iot-data` commands sign for it. */
export const IOT_DATA_SERVICE = 'iotdata';

function readSecret(inline: string, file: string, what: string): string {
  if (inline) return inline;
  if (!file) return '';
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`${what}File: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

export class AdminAuth {
  private readonly tokenDigest: Buffer | undefined;
  private readonly credentials = new Map<string, Credential>();

  constructor(config: AdminConfig) {
    const token = readSecret(config.token, config.tokenFile, 'admin.token');
    this.tokenDigest = token ? digest(token) : undefined;
    const s = config.sigv4;
    const secret = readSecret(s.secretAccessKey, s.secretAccessKeyFile, 'admin.sigv4.secretAccessKey');
    if (s.accessKeyId && !secret)
      throw new ConfigError(
        'admin.sigv4.accessKeyId is set without a secret access key: set admin.sigv4.secretAccessKey or secretAccessKeyFile',
      );
    if (!s.accessKeyId && secret)
      throw new ConfigError(
        'admin.sigv4 has a secret access key but no accessKeyId: set admin.sigv4.accessKeyId',
      );
    if (s.accessKeyId)
      this.credentials.set(s.accessKeyId, { accessKeyId: s.accessKeyId, secretAccessKey: secret });
  }

  /** True when credentials are required (a token or an access key is configured). */
  get required(): boolean {
    return this.tokenDigest !== undefined || this.credentials.size > 0;
  }

  check(req: IncomingMessage, body: Buffer): AuthResult {
    if (!this.required) {
      if (isLoopback(req.socket.remoteAddress)) return { ok: true };
      return {
        ok: false,
        status: 403,
        code: 'ForbiddenException',
        message:
          'The admin API answers only loopback clients unless admin.token or admin.sigv4 is configured',
      };
    }
    const authorization = req.headers.authorization ?? '';
    if (authorization.startsWith('Bearer ') && this.tokenDigest) {
      const given = digest(authorization.slice(7).trim());
      if (timingSafeEqual(given, this.tokenDigest)) return { ok: true };
      return { ok: false, status: 401, code: 'UnauthorizedException', message: 'Invalid bearer token' };
    }
    if (authorization.startsWith('AWS4-HMAC-SHA256 ') && this.credentials.size > 0) {
      const r = verifySigV4(
        { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body },
        { credentials: this.credentials, service: IOT_DATA_SERVICE },
      );
      return r.ok ? { ok: true } : r;
    }
    return {
      ok: false,
      status: 401,
      code: 'UnauthorizedException',
      message: 'Authorization required: a bearer token or a SigV4 signature with the configured access key',
    };
  }
}
