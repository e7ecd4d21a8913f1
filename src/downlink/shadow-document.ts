/**
 * Device shadow documents as AWS IoT Device Shadow keeps them, for the sources that keep shadows themselves
 * (memory, redis) and for the admin API's wire shape: update requests (`{"state":{"desired":{…}}}`, optional
 * `version` and `clientToken`), partial updates (objects merge, `null` deletes a field, arrays are replaced
 * whole), per-field metadata timestamps, a version that every update increments (and that carries on after a
 * delete), and the delta: desired fields that differ from reported.
 */

import { ApiError } from '../state/api-error.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** A shadow as a source keeps it. Timestamps are Unix seconds. */
export interface ShadowState {
  desired?: JsonObject;
  reported?: JsonObject;
  metadata?: { desired?: JsonObject; reported?: JsonObject };
  version: number;
  /** Time of the last update. */
  timestamp: number;
}

/** An UpdateThingShadow request body, validated. */
export interface ShadowUpdate {
  /** `null` deletes both sections. */
  state: { desired?: JsonObject | null; reported?: JsonObject | null } | null;
  version?: number;
  clientToken?: string;
}

/** The UpdateThingShadow answer body. */
export interface UpdateAnswer {
  state: ShadowUpdate['state'];
  metadata: { desired?: JsonObject | null; reported?: JsonObject | null };
  version: number;
  timestamp: number;
  clientToken?: string;
}

export const MAX_DEPTH = 6;
const MAX_CLIENT_TOKEN_BYTES = 64;

export function isJsonObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Nesting depth of `v`, counted no further than `limit + 1`: a request nested thousands of levels deep is
 * refused without recursing thousands of levels.
 */
function depth(v: Json, limit: number): number {
  if (!Array.isArray(v) && !isJsonObject(v)) return 0;
  if (limit === 0) return 1;
  let d = 0;
  for (const e of Array.isArray(v) ? v : Object.values(v)) {
    d = Math.max(d, depth(e, limit - 1));
    if (d >= limit) break;
  }
  return d + 1;
}

function hasUnsafeKey(v: Json): boolean {
  if (Array.isArray(v)) return v.some(hasUnsafeKey);
  if (!isJsonObject(v)) return false;
  for (const k of Object.keys(v)) if (k === '__proto__' || hasUnsafeKey(v[k])) return true;
  return false;
}

export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!(k in b) || !jsonEqual(a[k], (b as JsonObject)[k])) return false;
  return true;
}

/** Desired fields that differ from reported: objects compared field by field, anything else as a whole. */
export function shadowDelta(desired: JsonObject | undefined, reported: JsonObject | undefined): JsonObject {
  const out: JsonObject = {};
  if (!desired) return out;
  for (const k of Object.keys(desired)) {
    const d = desired[k];
    const r = reported?.[k];
    if (isJsonObject(d) && isJsonObject(r)) {
      const sub = shadowDelta(d, r);
      if (Object.keys(sub).length > 0) out[k] = sub;
    } else if (!jsonEqual(d, r)) out[k] = d;
  }
  return out;
}

/** Metadata for a value written at `ts`: `{timestamp}` per leaf, the value's shape above it. */
function timestampsOf(v: Json, ts: number): Json {
  if (Array.isArray(v)) return v.map((e) => (isJsonObject(e) ? timestampsOf(e, ts) : { timestamp: ts }));
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) out[k] = v[k] === null ? null : timestampsOf(v[k], ts);
    return out;
  }
  return { timestamp: ts };
}

/** Applies a partial update to `target` and its metadata in place; `null` removes a field. */
export function mergeSection(target: JsonObject, meta: JsonObject, patch: JsonObject, ts: number): void {
  for (const k of Object.keys(patch)) {
    const v = patch[k];
    if (v === null) {
      delete target[k];
      delete meta[k];
    } else if (isJsonObject(v)) {
      if (!isJsonObject(target[k])) {
        // A field that held a value (or nothing) becomes an object: its metadata starts over with it.
        target[k] = {};
        meta[k] = {};
      } else if (!isJsonObject(meta[k])) meta[k] = {};
      mergeSection(target[k] as JsonObject, meta[k] as JsonObject, v, ts);
    } else {
      target[k] = structuredClone(v);
      meta[k] = timestampsOf(v, ts);
    }
  }
}

function invalid(message: string, clientToken?: string): ApiError {
  return new ApiError(400, 'InvalidRequestException', message, clientToken);
}

/** Parses and validates an UpdateThingShadow body (UTF-8 JSON). */
export function parseShadowUpdate(body: Buffer): ShadowUpdate {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    if (e instanceof TypeError)
      throw new ApiError(
        415,
        'UnsupportedDocumentEncodingException',
        'Unsupported document encoding; supported encoding is UTF-8',
      );
    throw invalid('Invalid JSON');
  }
  if (!isJsonObject(doc)) throw invalid('Invalid JSON');
  const clientToken = doc.clientToken;
  if (
    clientToken !== undefined &&
    (typeof clientToken !== 'string' || Buffer.byteLength(clientToken) > MAX_CLIENT_TOKEN_BYTES)
  )
    throw invalid('Invalid clientToken');
  const token = clientToken as string | undefined;
  for (const key of Object.keys(doc))
    if (key !== 'state' && key !== 'version' && key !== 'clientToken')
      throw invalid(`Unexpected node: ${key}`, token);
  if (!('state' in doc)) throw invalid('Missing required node: state', token);
  const state = doc.state;
  if (state !== null && !isJsonObject(state)) throw invalid('State node must be an object', token);
  const version = doc.version;
  if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0))
    throw invalid('Invalid version', token);
  if (state !== null) {
    for (const k of Object.keys(state)) {
      const v = state[k];
      if (k !== 'desired' && k !== 'reported') throw invalid(`State contains an invalid node: ${k}`, token);
      if (v !== null && !isJsonObject(v))
        throw invalid(`${k === 'desired' ? 'Desired' : 'Reported'} node must be an object`, token);
      if (v !== null && depth(v, MAX_DEPTH) > MAX_DEPTH)
        throw invalid(`JSON contains too many levels of nesting; maximum is ${MAX_DEPTH}`, token);
      if (v !== null && hasUnsafeKey(v)) throw invalid('Invalid field name: __proto__', token);
    }
  }
  return {
    state: state as ShadowUpdate['state'],
    version: version as number | undefined,
    clientToken: token,
  };
}

/**
 * Applies an update to a shadow (undefined: none yet; `lastVersion` is the version a deleted shadow had).
 * Throws 409 when `update.version` is not the current version and 413 when the state would outgrow `maxBytes`.
 */
export function applyShadowUpdate(
  current: ShadowState | undefined,
  lastVersion: number,
  update: ShadowUpdate,
  now: number,
  maxBytes: number,
): { next: ShadowState; answer: UpdateAnswer } {
  const version = current?.version ?? lastVersion;
  if (update.version !== undefined && update.version !== version)
    throw new ApiError(409, 'ConflictException', 'Version conflict', update.clientToken);
  const next: ShadowState = current ? structuredClone(current) : { version, timestamp: now, metadata: {} };
  const meta = (next.metadata ??= {});
  const sections = update.state ?? { desired: null, reported: null };
  const answerMeta: UpdateAnswer['metadata'] = {};
  for (const section of ['desired', 'reported'] as const) {
    if (!(section in sections)) continue;
    const patch = sections[section];
    if (patch === null || patch === undefined) {
      delete next[section];
      delete meta[section];
      answerMeta[section] = null;
      continue;
    }
    const target = (next[section] ??= {});
    mergeSection(target, (meta[section] ??= {}), patch, now);
    answerMeta[section] = timestampsOf(patch, now) as JsonObject;
  }
  if (stateBytes(next) > maxBytes)
    throw new ApiError(
      413,
      'RequestEntityTooLargeException',
      `The shadow state would exceed ${maxBytes} bytes`,
      update.clientToken,
    );
  next.version = version + 1;
  next.timestamp = now;
  const answer: UpdateAnswer = {
    state: update.state,
    metadata: answerMeta,
    version: next.version,
    timestamp: now,
  };
  if (update.clientToken !== undefined) answer.clientToken = update.clientToken;
  return { next, answer };
}

/** Bytes of a shadow's state (desired and reported) as JSON: what the size limit applies to. */
export function stateBytes(s: ShadowState): number {
  return Buffer.byteLength(JSON.stringify({ desired: s.desired, reported: s.reported }));
}

/** The GetThingShadow answer body. */
export function shadowAnswer(s: ShadowState, now: number): JsonObject {
  const state: JsonObject = {};
  if (s.desired) state.desired = s.desired;
  if (s.reported) state.reported = s.reported;
  const delta = shadowDelta(s.desired, s.reported);
  if (Object.keys(delta).length > 0) state.delta = delta;
  const metadata: JsonObject = {};
  if (s.metadata?.desired) metadata.desired = s.metadata.desired;
  if (s.metadata?.reported) metadata.reported = s.metadata.reported;
  return { state, metadata, version: s.version, timestamp: now };
}

/** Reads a GetThingShadow answer body back into a shadow. */
export function shadowFromAnswer(body: unknown): ShadowState {
  if (!isJsonObject(body) || typeof body.version !== 'number' || !isJsonObject(body.state))
    throw new ApiError(502, 'InvalidShadowDocument', 'The shadow document has no state or version');
  const st = body.state;
  const md = isJsonObject(body.metadata) ? body.metadata : {};
  return {
    desired: isJsonObject(st.desired) ? st.desired : undefined,
    reported: isJsonObject(st.reported) ? st.reported : undefined,
    metadata: {
      desired: isJsonObject(md.desired) ? md.desired : undefined,
      reported: isJsonObject(md.reported) ? md.reported : undefined,
    },
    version: body.version,
    timestamp: typeof body.timestamp === 'number' ? body.timestamp : 0,
  };
}

export function unixSeconds(ms = Date.now()): number {
  return Math.floor(ms / 1000);
}
