/**
 * Device-shadow update requests and merges (`src/downlink/shadow-document.ts`), as the admin API takes them
 * from the network and the memory / redis sources apply them: a sequence of request bodies (JSON built to
 * collide on field names, deep nesting, mutated seeds, random bytes) is parsed and applied in turn.
 *
 * - parsing and applying throw only ApiError (400, 409, 413, 415), never anything else;
 * - an applied state keeps the documented limits: nesting at most MAX_DEPTH, at most `maxBytes` of JSON,
 *   no `__proto__` field; the version goes up by one; the shadow it was applied to is left unchanged;
 * - metadata has the same fields as the state; applying the same update again changes no state;
 * - the GetThingShadow answer reads back to the same state and version.
 */
import fc from 'fast-check';
import { ApiError } from '../../../src/state/api-error.js';
import {
  applyShadowUpdate,
  isJsonObject,
  jsonEqual,
  MAX_DEPTH,
  parseShadowUpdate,
  shadowAnswer,
  shadowFromAnswer,
  stateBytes,
  type Json,
  type JsonObject,
  type ShadowState,
} from '../../../src/downlink/shadow-document.js';
import { fail, must, mutatedSeed, onlyThrows, randomBytes, type FuzzTarget } from '../target.js';

export interface ShadowInput {
  /** Request bodies, applied in order. */
  bodies: Buffer[];
  maxBytes: number;
}

const isApiError = (e: unknown): boolean => e instanceof ApiError;

/** Field names that collide often, and the ones that mean something to JavaScript objects. */
const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'b', 'c', 'led', 'fw') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);

const value: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', maxDepth: MAX_DEPTH + 2 },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -5, max: 5 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 20 }),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(key, tie('v'), { maxKeys: 4 }),
  ),
})).v;

const section = fc.oneof(fc.constant(null), fc.dictionary(key, value, { maxKeys: 4 }));

/** Update requests: mostly well-shaped, some with wrong or extra nodes. */
const requestArbitrary: fc.Arbitrary<Buffer> = fc
  .oneof(
    {
      weight: 4,
      arbitrary: fc.record(
        {
          state: fc.record({ desired: section, reported: section }, { requiredKeys: [] }),
          version: fc.nat(6),
          clientToken: fc.string({ maxLength: 10 }),
        },
        { requiredKeys: ['state'] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record(
        {
          state: fc.oneof(section, value),
          version: fc.oneof(fc.nat(6), fc.constantFrom(-1, 1.5, '2', 2 ** 60)),
          clientToken: fc.oneof(fc.string({ maxLength: 70 }), fc.nat()),
          extra: fc.constant(1),
        },
        { requiredKeys: [] },
      ),
    },
  )
  .map((doc) => Buffer.from(JSON.stringify(doc)));

/** A field nested `n` levels deep in desired: arrays or objects, from a few levels to thousands. */
const deepArbitrary = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1000, max: 10_000 })), fc.boolean())
  .map(([n, arrays]) => {
    const [open, close] = arrays ? ['[', ']'] : ['{"x":', '}'];
    return Buffer.from(`{"state":{"desired":{"a":${open.repeat(n)}1${close.repeat(n)}}}}`);
  });

const SEEDS_FALLBACK = [Buffer.from('{"state":{"desired":{"led":"on"}}}')];

function depth(v: Json): number {
  if (Array.isArray(v)) return 1 + v.reduce<number>((d, e) => Math.max(d, depth(e)), 0);
  if (isJsonObject(v)) return 1 + Object.values(v).reduce<number>((d, e) => Math.max(d, depth(e)), 0);
  return 0;
}

function hasProtoField(v: Json): boolean {
  if (Array.isArray(v)) return v.some(hasProtoField);
  if (!isJsonObject(v)) return false;
  return Object.keys(v).some((k) => k === '__proto__' || hasProtoField(v[k]));
}

/** Fails unless `meta` has exactly the fields of `state`, object by object. */
function sameFields(state: JsonObject | undefined, meta: JsonObject | undefined, path: string): void {
  const a = Object.keys(state ?? {}).sort();
  const b = Object.keys(meta ?? {}).sort();
  must(a.join('\0') === b.join('\0'), `metadata fields at ${path}: ${b.join()} for ${a.join()}`);
  for (const k of a) {
    const v = state?.[k];
    if (isJsonObject(v)) sameFields(v, meta?.[k] as JsonObject, `${path}.${k}`);
  }
}

function checkState(s: ShadowState, maxBytes: number): void {
  must(stateBytes(s) <= maxBytes, `state of ${stateBytes(s)} bytes over ${maxBytes}`);
  for (const section of ['desired', 'reported'] as const) {
    const v = s[section];
    if (v === undefined) continue;
    must(depth(v) <= MAX_DEPTH, `${section} nested ${depth(v)} levels`);
    must(!hasProtoField(v), `${section} has a __proto__ field`);
    sameFields(v, s.metadata?.[section], section);
  }
}

export const shadowDocument: FuzzTarget<ShadowInput> = {
  name: 'shadow-document',
  description:
    'parseShadowUpdate / applyShadowUpdate: only ApiErrors; depth, size and metadata kept; idempotent',
  shortRuns: 1000,
  // One request body per line.
  seed: (file) => ({
    bodies: file
      .toString()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => Buffer.from(line)),
    maxBytes: 8192,
  }),
  arbitrary: (seeds) => {
    const bodies = seeds.flatMap((s) => s.bodies);
    const body = fc.oneof(
      { weight: 6, arbitrary: requestArbitrary },
      { weight: 2, arbitrary: mutatedSeed(bodies.length ? bodies : SEEDS_FALLBACK) },
      { weight: 1, arbitrary: deepArbitrary },
      { weight: 1, arbitrary: randomBytes(40) },
    );
    return fc.record({
      bodies: fc.array(body, { minLength: 1, maxLength: 6 }),
      maxBytes: fc.oneof(fc.constant(8192), fc.integer({ min: 16, max: 400 })),
    });
  },
  check({ bodies, maxBytes }) {
    let current: ShadowState | undefined;
    let now = 1_700_000_000;
    for (const body of bodies) {
      now++;
      const update = onlyThrows(() => parseShadowUpdate(body), isApiError, 'parseShadowUpdate');
      if (!update) continue;
      const before = structuredClone(current);
      const r = onlyThrows(
        () => applyShadowUpdate(current, current?.version ?? 0, update, now, maxBytes),
        isApiError,
        'applyShadowUpdate',
      );
      must(
        jsonEqual(before as unknown as Json, current as unknown as Json),
        'the shadow applied to is unchanged',
      );
      if (!r) continue;
      const { next, answer } = r;
      must(next.version === (current?.version ?? 0) + 1 && answer.version === next.version, 'version + 1');
      checkState(next, maxBytes);
      const again = onlyThrows(
        () => applyShadowUpdate(next, next.version, { ...update, version: undefined }, now, 1 << 30),
        isApiError,
        'applyShadowUpdate (again)',
      );
      if (!again) fail('the same update cannot be applied twice');
      must(jsonEqual(again.next.desired, next.desired), 'desired unchanged by the same update');
      must(jsonEqual(again.next.reported, next.reported), 'reported unchanged by the same update');
      const read = shadowFromAnswer(JSON.parse(JSON.stringify(shadowAnswer(next, now))));
      must(
        jsonEqual(read.desired, next.desired) && jsonEqual(read.reported, next.reported),
        'answer reads back',
      );
      must(read.version === next.version, 'answer version');
      current = next;
    }
  },
};
