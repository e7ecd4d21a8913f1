/** Alert codec (RFC 5246 §7.2): a level byte and a description byte. */
import { AlertDescription, AlertLevel } from './constants.js';

export interface Alert {
  readonly level: number;
  readonly description: number;
}

/** Parses an alert body; undefined unless it is exactly two bytes with a known level. */
export function parseAlert(body: Buffer): Alert | undefined {
  if (body.length !== 2) return undefined;
  const level = body[0];
  if (level !== AlertLevel.warning && level !== AlertLevel.fatal) return undefined;
  return { level, description: body[1] };
}

export function encodeAlert(level: number, description: number): Buffer {
  return Buffer.from([level, description]);
}

/** close_notify is the one warning alert that ends a session (RFC 5246 §7.2.1). */
export function endsSession(a: Alert): boolean {
  return a.level === AlertLevel.fatal || a.description === AlertDescription.closeNotify;
}
