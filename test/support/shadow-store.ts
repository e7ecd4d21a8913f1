/**
 * Device shadows as the IoT Data Plane keeps them: classic and named shadows per thing, partial updates
 * (`null` deletes a field, objects merge, arrays are replaced whole), per-field metadata timestamps, a version
 * that optimistic updates must match (409 otherwise), `clientToken` echoed, and `delta` (desired fields that
 * differ from reported) in GET answers. A deleted shadow's version carries on when it is created again.
 */

export interface ShadowAnswer {
  status: number;
  /** AWS error code for error answers (`x-amzn-ErrorType`). */
  code?: string;
  body: unknown;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface Shadow {
  desired?: JsonObject;
  reported?: JsonObject;
  metaDesired?: JsonObject;
  metaReported?: JsonObject;
  version: number;
}

const NAME_RE = /^[a-zA-Z0-9:_-]{1,64}$/;
const THING_RE = /^[a-zA-Z0-9:_-]{1,128}$/;
export const MAX_SHADOW_BYTES = 8 * 1024;
const MAX_DEPTH = 6;

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function depth(v: Json): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depth));
  if (isObject(v)) return 1 + Math.max(0, ...Object.values(v).map(depth));
  return 0;
}

function deepEqual(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function timestampsOf(v: Json, ts: number): Json {
  if (Array.isArray(v))
    return v.map((e) => (isObject(e) ? (timestampsOf(e, ts) as Json) : { timestamp: ts }));
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) out[k] = x === null ? null : timestampsOf(x, ts);
    return out;
  }
  return { timestamp: ts };
}

/** Applies a partial update to `target` and its metadata; `null` removes a field. */
function merge(target: JsonObject, meta: JsonObject, patch: JsonObject, ts: number): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete target[k];
      delete meta[k];
    } else if (isObject(v)) {
      if (!isObject(target[k])) target[k] = {};
      if (!isObject(meta[k])) meta[k] = {};
      merge(target[k] as JsonObject, meta[k] as JsonObject, v, ts);
    } else {
      target[k] = structuredClone(v);
      meta[k] = timestampsOf(v, ts);
    }
  }
}

/** Desired fields that differ from reported (objects compared field by field, arrays whole). */
export function shadowDelta(desired: JsonObject, reported: JsonObject | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, d] of Object.entries(desired)) {
    const r = reported?.[k];
    if (r === undefined) out[k] = structuredClone(d);
    else if (isObject(d) && isObject(r)) {
      const sub = shadowDelta(d, r);
      if (Object.keys(sub).length > 0) out[k] = sub;
    } else if (!deepEqual(d, r)) out[k] = structuredClone(d);
  }
  return out;
}

function err(status: number, code: string, message: string, clientToken?: string): ShadowAnswer {
  return { status, code, body: { code: status, message, ...(clientToken ? { clientToken } : {}) } };
}

export class ShadowStore {
  private readonly shadows = new Map<string, Map<string, Shadow>>();
  private readonly deletedVersions = new Map<string, number>();

  constructor(private readonly clock: () => number = () => Math.floor(Date.now() / 1000)) {}

  private static check(thing: string, name: string): ShadowAnswer | undefined {
    if (!THING_RE.test(thing)) return err(400, 'InvalidRequestException', 'Invalid thing name');
    if (name !== '' && !NAME_RE.test(name)) return err(400, 'InvalidRequestException', 'Invalid shadow name');
    return undefined;
  }

  private static missing(thing: string, name: string): ShadowAnswer {
    return err(
      404,
      'ResourceNotFoundException',
      `No shadow exists with name: '${name ? `${thing}~${name}` : thing}'`,
    );
  }

  /** `name` is '' for the classic shadow. */
  get(thing: string, name: string): ShadowAnswer {
    const bad = ShadowStore.check(thing, name);
    if (bad) return bad;
    const s = this.shadows.get(thing)?.get(name);
    if (!s) return ShadowStore.missing(thing, name);
    const state: JsonObject = {};
    const metadata: JsonObject = {};
    if (s.desired) state.desired = structuredClone(s.desired);
    if (s.reported) state.reported = structuredClone(s.reported);
    if (s.desired) {
      const delta = shadowDelta(s.desired, s.reported);
      if (Object.keys(delta).length > 0) state.delta = delta;
    }
    if (s.metaDesired) metadata.desired = structuredClone(s.metaDesired);
    if (s.metaReported) metadata.reported = structuredClone(s.metaReported);
    return { status: 200, body: { state, metadata, version: s.version, timestamp: this.clock() } };
  }

  update(thing: string, name: string, payload: Buffer): ShadowAnswer {
    const bad = ShadowStore.check(thing, name);
    if (bad) return bad;
    let doc: unknown;
    try {
      doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
    } catch (e) {
      if (e instanceof TypeError)
        return err(
          415,
          'UnsupportedDocumentEncodingException',
          'Unsupported documented encoding; supported encoding is UTF-8',
        );
      return err(400, 'InvalidRequestException', 'Invalid JSON');
    }
    if (!isObject(doc)) return err(400, 'InvalidRequestException', 'Invalid JSON');
    const clientToken = doc.clientToken;
    if (clientToken !== undefined && (typeof clientToken !== 'string' || Buffer.byteLength(clientToken) > 64))
      return err(400, 'InvalidRequestException', 'Invalid clientToken');
    const token = clientToken as string | undefined;
    if (!('state' in doc)) return err(400, 'InvalidRequestException', 'Missing required node: state', token);
    const state = doc.state;
    if (state !== null && !isObject(state))
      return err(400, 'InvalidRequestException', 'State node must be an object', token);
    const version = doc.version;
    if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 0))
      return err(400, 'InvalidRequestException', 'Invalid version', token);
    for (const key of Object.keys(doc)) {
      if (!['state', 'version', 'clientToken'].includes(key))
        return err(400, 'InvalidRequestException', 'State contains an invalid node', token);
    }
    const sections = state === null ? { desired: null, reported: null } : state;
    for (const [k, v] of Object.entries(sections)) {
      if (k !== 'desired' && k !== 'reported')
        return err(400, 'InvalidRequestException', 'State contains an invalid node', token);
      if (v !== null && !isObject(v))
        return err(
          400,
          'InvalidRequestException',
          `${k === 'desired' ? 'Desired' : 'Reported'} node must be an object`,
          token,
        );
      if (v !== null && depth(v) > MAX_DEPTH)
        return err(
          400,
          'InvalidRequestException',
          'JSON contains too many levels of nesting; maximum is 6',
          token,
        );
    }

    const key = `${thing}\u0000${name}`;
    const things = this.shadows.get(thing);
    const existing = things?.get(name);
    const current = existing?.version ?? this.deletedVersions.get(key) ?? 0;
    if (version !== undefined && version !== current)
      return err(409, 'ConflictException', 'Version conflict', token);

    const next: Shadow = existing ? structuredClone(existing) : { version: current };
    const ts = this.clock();
    const metadata: JsonObject = {};
    for (const section of ['desired', 'reported'] as const) {
      if (!(section in sections)) continue;
      const patch = (sections as Record<string, Json>)[section];
      const metaKey = section === 'desired' ? 'metaDesired' : 'metaReported';
      if (patch === null) {
        delete next[section];
        delete next[metaKey];
        metadata[section] = null;
        continue;
      }
      const target = (next[section] ??= {});
      const meta = (next[metaKey] ??= {});
      merge(target, meta, patch as JsonObject, ts);
      metadata[section] = timestampsOf(patch as JsonObject, ts);
    }
    const size = Buffer.byteLength(JSON.stringify({ desired: next.desired, reported: next.reported }));
    if (size > MAX_SHADOW_BYTES)
      return err(
        413,
        'RequestEntityTooLargeException',
        'The payload exceeds the maximum size allowed',
        token,
      );
    next.version = current + 1;
    let map = things;
    if (!map) this.shadows.set(thing, (map = new Map()));
    map.set(name, next);
    this.deletedVersions.delete(key);
    return {
      status: 200,
      body: {
        state,
        metadata,
        version: next.version,
        timestamp: ts,
        ...(token ? { clientToken: token } : {}),
      },
    };
  }

  delete(thing: string, name: string): ShadowAnswer {
    const bad = ShadowStore.check(thing, name);
    if (bad) return bad;
    const things = this.shadows.get(thing);
    const s = things?.get(name);
    if (!things || !s) return ShadowStore.missing(thing, name);
    things.delete(name);
    if (things.size === 0) this.shadows.delete(thing);
    this.deletedVersions.set(`${thing}\u0000${name}`, s.version);
    return { status: 200, body: { version: s.version, timestamp: this.clock() } };
  }

  /** ListNamedShadowsForThing: names in order, paged by an opaque token. */
  listNamed(thing: string, pageSize: number | undefined, nextToken: string | undefined): ShadowAnswer {
    const bad = ShadowStore.check(thing, '');
    if (bad) return bad;
    const size = pageSize ?? 25;
    if (!Number.isInteger(size) || size < 1 || size > 100)
      return err(400, 'InvalidRequestException', 'pageSize must be between 1 and 100');
    let from = 0;
    if (nextToken !== undefined) {
      from = Number(Buffer.from(nextToken, 'base64url').toString('utf8'));
      if (!Number.isInteger(from) || from < 0)
        return err(400, 'InvalidRequestException', 'Invalid nextToken');
    }
    const names = [...(this.shadows.get(thing)?.keys() ?? [])].filter((n) => n !== '').sort();
    const results = names.slice(from, from + size);
    const more = from + size < names.length;
    return {
      status: 200,
      body: {
        results,
        ...(more ? { nextToken: Buffer.from(String(from + size)).toString('base64url') } : {}),
        timestamp: this.clock(),
      },
    };
  }
}
