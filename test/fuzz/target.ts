/**
 * What a fuzz target is, and the pieces every target shares. A target names one untrusted-input parser,
 * says how to read its committed seed corpus (`test/fuzz/corpus/<name>/`), gives a fast-check arbitrary
 * that mixes random input, mutations of the seeds and structured input, and checks its invariants on one
 * input (throwing on a violation). The short mode (`fuzz.test.ts`) and the long mode (`run.ts`) run the
 * same targets: corpus first, then generated input, with fast-check shrinking any failure. A target whose
 * system under test answers later (a server waiting on a lookup) is `async`: its check returns a promise and
 * the runners await every case.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

export interface FuzzTarget<T> {
  readonly name: string;
  /** One line: what is fed and what must hold. */
  readonly description: string;
  /** Reads one corpus file (its bytes and name) into an input. */
  seed(file: Buffer, name: string): T;
  /** Inputs to try, built around the seed corpus. */
  arbitrary(seeds: readonly T[]): fc.Arbitrary<T>;
  /** Checks the invariants on one input; throws (an async target: rejects) on a violation. */
  check(input: T): void | Promise<void>;
  /** True when `check` returns a promise to await. */
  readonly async?: boolean;
  /** Generated cases in the short mode (inside `npm test`), sized for about a second. */
  readonly shortRuns: number;
}

/** A target whose input type does not matter to the runners. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTarget = FuzzTarget<any>;

export const CORPUS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'corpus');

/** The bytes of a `.hex` corpus file: hex digits, whitespace ignored, `#` starts a comment line. */
export function hexFile(text: Buffer | string): Buffer {
  const lines = text.toString().split('\n');
  return Buffer.from(
    lines
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

/** The seed corpus of a target: every file of its folder, in name order, read by `target.seed`. */
export function loadCorpus<T>(target: FuzzTarget<T>): { file: string; input: T }[] {
  const dir = join(CORPUS_DIR, target.name);
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && f !== 'README.md')
    .sort()
    .map((file) => ({ file, input: target.seed(readFileSync(join(dir, file)), file) }));
}

/**
 * The fast-check property of a target over `seeds`: an asyncProperty for an async target. A synchronous
 * target whose check returns a promise fails, rather than passing every case unawaited.
 */
export function propertyOf<T>(target: FuzzTarget<T>, seeds: readonly T[]): fc.IRawProperty<[T]> {
  const arbitrary = target.arbitrary(seeds);
  if (target.async) return fc.asyncProperty(arbitrary, async (input) => target.check(input));
  return fc.property(arbitrary, (input) => {
    if (target.check(input) instanceof Promise)
      fail(`${target.name}: check returned a promise; mark it async`);
  });
}

/** Fails an invariant with a message (assert-style, usable outside a test runner). */
export function fail(message: string): never {
  throw new Error(`invariant: ${message}`);
}

/** Fails unless `ok`. */
export function must(ok: boolean, message: string): void {
  if (!ok) fail(message);
}

/**
 * Runs `parse` and fails on any exception except the documented error type (`allowed` returns true for it).
 * Returns the result, or undefined when the documented error was thrown.
 */
export function onlyThrows<R>(
  parse: () => R,
  allowed: (err: unknown) => boolean,
  what: string,
): R | undefined {
  try {
    return parse();
  } catch (err) {
    if (allowed(err)) return undefined;
    throw new Error(`invariant: ${what} threw an undocumented error: ${String(err)}`, { cause: err });
  }
}

/** Never throws (a parser that returns undefined or an error value instead). */
export const nothing = (): boolean => false;

/** Byte values that make length fields and tags interesting. */
const INTERESTING_8 = [0x00, 0x01, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x17, 0x18, 0x1f, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_16 = [0x0000, 0x0001, 0x00ff, 0x0100, 0x010c, 0x7fff, 0x8000, 0xfffe, 0xffff];

/** One edit of a seed. Positions are taken modulo the length, so they shrink towards the start. */
export type Edit =
  | { op: 'set'; at: number; value: number }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'interesting8'; at: number; pick: number }
  | { op: 'interesting16'; at: number; pick: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'truncate'; at: number }
  | { op: 'duplicate'; at: number; count: number }
  | { op: 'splice'; at: number; other: number; from: number };

export const editArbitrary: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('interesting8' as const), at: fc.nat(), pick: fc.nat() }),
  fc.record({ op: fc.constant('interesting16' as const), at: fc.nat(), pick: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat() }),
);

/** `b` with one edit (in place when it keeps the length); a splice takes its tail from one of `seeds`. */
export function applyEdit(b: Buffer, e: Edit, seeds: readonly Buffer[]): Buffer {
  const n = b.length;
  const at = n === 0 ? 0 : e.at % n;
  switch (e.op) {
    case 'set':
      if (n) b[at] = e.value;
      return b;
    case 'flip':
      if (n) b[at] ^= 1 << e.bit;
      return b;
    case 'interesting8':
      if (n) b[at] = INTERESTING_8[e.pick % INTERESTING_8.length];
      return b;
    case 'interesting16':
      if (n >= 2) b.writeUInt16BE(INTERESTING_16[e.pick % INTERESTING_16.length], Math.min(at, n - 2));
      return b;
    case 'insert':
      return Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + e.count)]);
    case 'truncate':
      return b.subarray(0, at);
    case 'duplicate':
      return Buffer.concat([b.subarray(0, at + e.count), b.subarray(at)]);
    case 'splice': {
      const o = seeds[e.other % seeds.length];
      return Buffer.concat([b.subarray(0, at), o.subarray(o.length === 0 ? 0 : e.from % o.length)]);
    }
  }
}

/** A seed with up to `maxEdits` random edits (shrinks towards the seed itself and towards the first seed). */
export function mutatedSeed(seeds: readonly Buffer[], maxEdits = 6): fc.Arbitrary<Buffer> {
  if (seeds.length === 0) return fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
  return fc
    .tuple(fc.nat(seeds.length - 1), fc.array(editArbitrary, { maxLength: maxEdits }))
    .map(([i, edits]) => {
      let b: Buffer = Buffer.from(seeds[i]);
      for (const e of edits) b = applyEdit(b, e, seeds);
      return b;
    });
}

/** Random bytes (up to `maxLength`). */
export function randomBytes(maxLength: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
}

/** A buffer of `n` random bytes exactly. */
export function bytesOf(n: number): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
}

/** A vector with a big-endian length prefix of `width` bytes (1, 2 or 3). */
export function vec(width: 1 | 2 | 3, body: Buffer): Buffer {
  const head = Buffer.alloc(width);
  head.writeUIntBE(body.length, 0, width);
  return Buffer.concat([head, body]);
}

/** A value for a report: Buffers as hex, long ones cut, the whole cut to `max` characters. */
export function describeInput(value: unknown, max = 2000): string {
  const text = JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    const raw = (this as Record<string, unknown>)[key];
    if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) {
      const b = Buffer.from(raw as Uint8Array);
      return b.length > 256
        ? `hex:${b.subarray(0, 256).toString('hex')}… (${b.length} bytes)`
        : `hex:${b.toString('hex')}`;
    }
    return typeof v === 'bigint' ? `${v}n` : v;
  });
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

/** The report of a failed fast-check run: where it failed, how to replay it, the shrunk input and the error. */
export function failureReport<Ts extends unknown[]>(
  target: string,
  details: fc.RunDetails<Ts>,
  runs: number,
): string {
  const err = details.errorInstance;
  const message =
    err instanceof Error
      ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.stack?.split('\n').slice(0, 4).join(' ← ')})` : ''}`
      : String(err);
  return [
    `${target}: FAILED after ${details.numRuns} case(s), shrunk ${details.numShrinks} time(s)`,
    `  replay: npm run fuzz -- --target ${target} --seed ${details.seed} --runs ${runs} --path ${details.counterexamplePath}`,
    `  input: ${describeInput(details.counterexample?.[0])}`,
    `  error: ${message}`,
  ].join('\n');
}
