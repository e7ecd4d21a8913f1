/**
 * SenML (RFC 8428) packs to resolved records (§4.6): base name, time, unit, value and sum applied, relative
 * times turned absolute against the time of reception, records in chronological order. The Version field
 * appears in every resolved record only when it is not the default 10.
 */
import { DecodeError } from '../../src/codecs/codec.js';

export interface ResolvedRecord {
  n: string;
  u?: string;
  t: number;
  v?: number;
  vs?: string;
  vb?: boolean;
  vd?: string;
  s?: number;
  ut?: number;
  bver?: number;
}

/** CBOR labels (RFC 8428 Table 4). The table is conclusive: other integer keys are not SenML fields. */
export const CBOR_LABELS: ReadonlyMap<number, string> = new Map([
  [-1, 'bver'],
  [-2, 'bn'],
  [-3, 'bt'],
  [-4, 'bu'],
  [-5, 'bv'],
  [-6, 'bs'],
  [0, 'n'],
  [1, 'u'],
  [2, 'v'],
  [3, 'vs'],
  [4, 'vb'],
  [5, 's'],
  [6, 't'],
  [7, 'ut'],
  [8, 'vd'],
]);

export const LABEL_CBOR: ReadonlyMap<string, number> = new Map([...CBOR_LABELS].map(([k, v]) => [v, k]));

const SENML_VERSION = 10;
/** Times below 2^28 are relative to "now" (RFC 8428 §4.5.3). */
const RELATIVE_LIMIT = 2 ** 28;
const NAME = /^[A-Za-z0-9][A-Za-z0-9\-:./_]*$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function bad(index: number, what: string): never {
  throw new DecodeError(`SenML record ${index + 1}: ${what}`);
}

/** A record as received: any of the labels, with values of any type until checked. */
interface RawRecord {
  bn?: unknown;
  bt?: unknown;
  bu?: unknown;
  bv?: unknown;
  bs?: unknown;
  bver?: unknown;
  n?: unknown;
  u?: unknown;
  v?: unknown;
  vs?: unknown;
  vb?: unknown;
  vd?: unknown;
  s?: unknown;
  t?: unknown;
  ut?: unknown;
}

function num(v: unknown, label: string, index: number): number | undefined {
  if (v === undefined || (typeof v === 'number' && Number.isFinite(v))) return v;
  return bad(index, `"${label}" must be a number`);
}

function str(v: unknown, label: string, index: number): string | undefined {
  if (v === undefined || typeof v === 'string') return v;
  return bad(index, `"${label}" must be a string`);
}

/**
 * Resolves a SenML pack whose records use the JSON labels. `now` is the time of reception in seconds since
 * the epoch. Throws a DecodeError naming the record at fault.
 */
export function resolveSenml(pack: unknown, now: number): ResolvedRecord[] {
  if (!Array.isArray(pack)) throw new DecodeError('SenML: a pack is an array of records');
  let bn = '';
  let bt = 0;
  let bu: string | undefined;
  let bv = 0;
  let bs: number | undefined;
  let bver: number | undefined;
  let sorted = true;
  const out: ResolvedRecord[] = [];
  for (let i = 0; i < pack.length; i++) {
    const rec = pack[i] as RawRecord;
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) bad(i, 'not an object');
    for (const label in rec)
      if (label.charCodeAt(label.length - 1) === 0x5f)
        bad(i, `must-understand field "${label}" is not supported`);
    const ver = rec.bver ?? bver ?? SENML_VERSION;
    if (typeof ver !== 'number' || !Number.isInteger(ver) || ver < 1)
      bad(i, '"bver" must be a positive integer');
    if (ver > SENML_VERSION) bad(i, `SenML version ${ver} is newer than ${SENML_VERSION}`);
    if (i > 0 && ver !== (bver ?? SENML_VERSION)) bad(i, 'all records of a pack must have the same version');
    bver = ver;
    bn = str(rec.bn, 'bn', i) ?? bn;
    bt = num(rec.bt, 'bt', i) ?? bt;
    bu = str(rec.bu, 'bu', i) ?? bu;
    bv = num(rec.bv, 'bv', i) ?? bv;
    bs = num(rec.bs, 'bs', i) ?? bs;

    const n = str(rec.n, 'n', i);
    const u = str(rec.u, 'u', i);
    const t = num(rec.t, 't', i);
    const ut = num(rec.ut, 'ut', i);
    const v = num(rec.v, 'v', i);
    const vs = str(rec.vs, 'vs', i);
    const vd = str(rec.vd, 'vd', i);
    const vb = rec.vb;
    if (vb !== undefined && typeof vb !== 'boolean') bad(i, '"vb" must be a boolean');
    const s = num(rec.s, 's', i);
    const count =
      (v !== undefined ? 1 : 0) +
      (vs !== undefined ? 1 : 0) +
      (vb !== undefined ? 1 : 0) +
      (vd !== undefined ? 1 : 0);
    if (count > 1) bad(i, 'more than one value field');
    if (count === 0 && s === undefined) {
      // A record that only sets base fields for the records after it.
      if (n === undefined && u === undefined && t === undefined && ut === undefined) continue;
      bad(i, 'no value and no sum');
    }
    if (vd !== undefined && !BASE64URL.test(vd)) bad(i, '"vd" must be base64url without padding');

    const name = n === undefined ? bn : bn + n;
    if (!NAME.test(name)) bad(i, `name "${name}" is empty or has characters SenML does not allow`);
    let time = t === undefined ? bt : bt + t;
    if (time < RELATIVE_LIMIT) time += now;
    if (out.length > 0 && time < out[out.length - 1].t) sorted = false;
    const r: ResolvedRecord = { n: name, t: time };
    const unit = u ?? bu;
    if (unit !== undefined) r.u = unit;
    if (v !== undefined) r.v = bv + v;
    else if (vs !== undefined) r.vs = vs;
    else if (vb !== undefined) r.vb = vb as boolean;
    else if (vd !== undefined) r.vd = vd;
    if (s !== undefined || (bs !== undefined && count > 0)) r.s = (bs ?? 0) + (s ?? 0);
    if (ut !== undefined) r.ut = ut;
    out.push(r);
  }
  // Resolved records are in chronological order (RFC 8428 §4.6); the sort is stable.
  if (!sorted) out.sort((a, b) => a.t - b.t);
  if (bver !== undefined && bver !== SENML_VERSION) for (const r of out) r.bver = bver;
  return out;
}

/** A CBOR SenML record (a Map with integer labels) in JSON labels; byte strings become base64url. */
export function cborRecord(rec: unknown, index: number): Record<string, unknown> {
  if (!(rec instanceof Map)) bad(index, 'not a map');
  const out: Record<string, unknown> = {};
  for (const [key, value] of rec) {
    let label: string | undefined;
    if (typeof key === 'number') label = CBOR_LABELS.get(key);
    else if (typeof key === 'string') {
      // Text keys are extension labels (RFC 8428 §6); one spelled like a standard label is not that field.
      if (key.endsWith('_')) bad(index, `must-understand field "${key}" is not supported`);
      label = undefined;
    }
    if (label === undefined) continue;
    if (typeof value === 'bigint') out[label] = Number(value);
    else if (value instanceof Uint8Array) {
      if (label !== 'vd') bad(index, `"${label}" must not be a byte string`);
      out[label] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64url');
    } else if (label === 'vd') bad(index, '"vd" must be a byte string');
    else out[label] = value;
  }
  return out;
}
