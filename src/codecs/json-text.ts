/** JSON payloads: strict UTF-8, bounded nesting (the envelope is serialised again, recursively). */
import { DecodeError } from './codec.js';

export const MAX_JSON_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * True when `[` and `{` nest deeper than `max` outside strings in a JSON text. Self-contained: the sandbox
 * worker runs a copy of its source.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** Parses a JSON payload (RFC 8259); throws a DecodeError saying what is wrong. */
export function parseJsonPayload(bytes: Buffer, what = 'JSON'): unknown {
  if (bytes.length === 0) throw new DecodeError(`${what}: empty payload`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new DecodeError(`${what}: payload is not valid UTF-8`);
  }
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH))
    throw new DecodeError(`${what}: nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`${what}: ${(err as Error).message}`);
  }
}

/** Serialises a value as a JSON payload; throws a DecodeError when it has no JSON form. */
export function jsonPayload(data: unknown): Buffer {
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (err) {
    throw new DecodeError(`cannot encode as JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new DecodeError('cannot encode as JSON: no JSON form');
  return Buffer.from(text);
}
