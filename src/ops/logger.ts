/**
 * Structured JSON logs (pino): one JSON object per line with `level`, `time`, `msg` and context fields. Keys
 * and secrets never reach a log line: every field named like a secret is replaced with "[redacted]", at any
 * depth, whatever object it sits in.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Field names whose values are never logged (compared case-insensitively). */
export const SECRET_FIELD_NAMES = [
  'key',
  'keys',
  'psk',
  'pskKey',
  'secret',
  'secretAccessKey',
  'sessionToken',
  'password',
  'passphrase',
  'credentials',
  'authorization',
  'privateKey',
  'token',
] as const;

const SECRET = new Set<string>(SECRET_FIELD_NAMES.map((n) => n.toLowerCase()));
const CENSOR = '[redacted]';
const MAX_DEPTH = 8;

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A copy of `v` with secret fields redacted; `v` itself when there is nothing to redact. */
export function redactSecrets(v: unknown, depth = 0): unknown {
  if (v === null || typeof v !== 'object' || depth > MAX_DEPTH) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const r = redactSecrets(v[i], depth + 1);
      if (r !== v[i]) (out ??= v.slice())[i] = r;
    }
    return out ?? v;
  }
  if (!isPlain(v)) return v;
  const o = v as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(o)) {
    const val = o[k];
    const r = SECRET.has(k.toLowerCase()) && val !== undefined ? CENSOR : redactSecrets(val, depth + 1);
    if (r !== val) (out ??= { ...o })[k] = r;
  }
  return out ?? v;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'cellgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => redactSecrets(obj) as Record<string, unknown>,
      },
    },
    destination,
  );
}

/** A logger that writes nothing (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A child logger whose lines carry the device (`deviceId`, `thing`). Create it only when logging. */
export function deviceLogger(log: Logger, device: { readonly id: string; readonly thing: string }): Logger {
  return log.child({ deviceId: device.id, thing: device.thing });
}
