/**
 * `npm run fuzz -- [--minutes N] [--target NAME,…] [--seed S]`: the long fuzzing run. Every target first
 * replays its committed corpus, then gets an equal share of the time, in rounds of at most a minute each so
 * all targets are under way early. Within its turn a target runs batches of generated cases, each batch with
 * its own seed and sized to about a second; there is no case limit, only the time. A failure is shrunk by
 * fast-check and printed with its seed, case count and path (`--seed S --runs N --path P` replays exactly
 * that case); the target then stops, the others go on, and the run exits non-zero. At the end: executions
 * per target.
 */
import fc from 'fast-check';
import { failureReport, loadCorpus, propertyOf, type AnyTarget } from './target.js';
import { TARGETS } from './targets/index.js';

interface Options {
  minutes: number;
  targets: readonly AnyTarget[];
  seed: number;
  /** Replay one batch: its case count and the failing path. */
  runs?: number;
  path?: string;
}

const USAGE = `usage: npm run fuzz -- [--minutes N] [--target NAME[,NAME…]] [--seed S]
       npm run fuzz -- --target NAME --seed S --runs N --path P    (replay a reported failure)

targets: ${TARGETS.map((t) => t.name).join(', ')}
`;

function usage(problem: string): never {
  process.stderr.write(`${problem}\n\n${USAGE}`);
  process.exit(2);
}

function parseArgs(args: string[]): Options {
  const o: Options = { minutes: 1, targets: TARGETS, seed: (Date.now() ^ (Math.random() * 2 ** 31)) | 0 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => args[++i] ?? usage(`${a} needs a value`);
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--minutes') {
      o.minutes = Number(value());
      if (!(o.minutes > 0)) usage('--minutes takes a positive number');
    } else if (a === '--target') {
      const names = value().split(',');
      const unknown = names.filter((n) => !TARGETS.some((t) => t.name === n));
      if (unknown.length) usage(`unknown target(s): ${unknown.join(', ')}`);
      o.targets = TARGETS.filter((t) => names.includes(t.name));
    } else if (a === '--seed') {
      o.seed = Number(value()) | 0;
    } else if (a === '--runs') {
      o.runs = Number(value());
    } else if (a === '--path') {
      o.path = value();
    } else usage(`unknown option ${a}`);
  }
  if (o.path !== undefined && (o.targets.length !== 1 || o.runs === undefined))
    usage('--path replays one target: give --target, --seed and --runs too');
  return o;
}

interface TargetRun {
  target: AnyTarget;
  property: fc.IRawProperty<[unknown]>;
  corpus: number;
  executions: number;
  batches: number;
  ms: number;
  /** Cases per batch, adjusted to about a second per batch. */
  batchRuns: number;
  failure?: string;
}

const BATCH_MS = 1000;
const ROUND_MS = 60_000;

async function prepare(target: AnyTarget, failures: string[]): Promise<TargetRun> {
  const corpus = loadCorpus(target);
  let failure: string | undefined;
  for (const { file, input } of corpus) {
    try {
      await target.check(input);
    } catch (err) {
      failure = `${target.name}: corpus entry ${file} FAILED: ${(err as Error).message}`;
      failures.push(failure);
      break;
    }
  }
  const property = propertyOf(
    target,
    corpus.map((c) => c.input),
  );
  return {
    target,
    property,
    corpus: corpus.length,
    executions: 0,
    batches: 0,
    ms: 0,
    batchRuns: 100,
    failure,
  };
}

/** Runs one target's batches for `ms` milliseconds; a failure ends the target. */
async function turn(run: TargetRun, ms: number, nextSeed: () => number, failures: string[]): Promise<void> {
  const end = Date.now() + ms;
  while (!run.failure && Date.now() < end) {
    const seed = nextSeed();
    const numRuns = run.batchRuns;
    const t0 = Date.now();
    const details = await fc.check(run.property, { seed, numRuns });
    const took = Date.now() - t0;
    run.ms += took;
    run.batches++;
    run.executions += details.numRuns;
    if (details.failed) {
      run.failure = failureReport(run.target.name, details, numRuns);
      failures.push(run.failure);
      process.stdout.write(`\n${run.failure}\n\n`);
      return;
    }
    // Aim the next batch at about a second (and never past the end of the turn by much).
    const perCase = Math.max(took, 1) / numRuns;
    run.batchRuns = Math.max(
      10,
      Math.min(200_000, Math.round(Math.min(BATCH_MS, end - Date.now()) / perCase)),
    );
  }
}

function summary(runs: readonly TargetRun[], elapsedMs: number): string {
  const rows = runs.map((r) => [
    r.target.name,
    String(r.corpus),
    r.executions.toLocaleString('en-US'),
    r.ms > 0 ? Math.round((r.executions / r.ms) * 1000).toLocaleString('en-US') : '-',
    r.failure ? 'FAILED' : 'ok',
  ]);
  const head = ['target', 'corpus', 'executions', 'per second', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const total = runs.reduce((n, r) => n + r.executions, 0);
  return [
    line(head),
    ...rows.map(line),
    `total: ${total.toLocaleString('en-US')} executions in ${(elapsedMs / 60_000).toFixed(1)} minutes`,
  ].join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.path !== undefined) {
    const t = o.targets[0];
    const run = await prepare(t, []);
    const details = await fc.check(run.property, { seed: o.seed, numRuns: o.runs, path: o.path });
    process.stdout.write(
      details.failed ? `${failureReport(t.name, details, o.runs as number)}\n` : 'passes now\n',
    );
    process.exit(details.failed ? 1 : 0);
  }
  const started = Date.now();
  const budget = o.minutes * 60_000;
  process.stdout.write(
    `cellgate fuzzing — node ${process.version}; ${o.targets.length} targets, ${o.minutes} minute(s), seed ${o.seed}\n`,
  );
  const failures: string[] = [];
  const runs: TargetRun[] = [];
  for (const t of o.targets) runs.push(await prepare(t, failures));
  for (const r of runs) if (r.failure) process.stdout.write(`${r.failure}\n`);
  let batch = 0;
  // Each batch's seed follows from the run's seed, so a whole run can be repeated with --seed.
  const nextSeed = (): number => (o.seed + Math.imul(++batch, 0x9e3779b1)) | 0;
  const perTarget = (budget - (Date.now() - started)) / runs.length;
  const rounds = Math.max(1, Math.ceil(perTarget / ROUND_MS));
  for (let round = 1; round <= rounds; round++) {
    for (const r of runs) await turn(r, perTarget / rounds, nextSeed, failures);
    const done = runs.reduce((n, r) => n + r.executions, 0);
    process.stdout.write(
      `round ${round}/${rounds}: ${done.toLocaleString('en-US')} executions, ${((Date.now() - started) / 60_000).toFixed(1)} min\n`,
    );
  }
  process.stdout.write(`\n${summary(runs, Date.now() - started)}\n`);
  if (failures.length) {
    process.stdout.write(`\n${failures.length} failure(s):\n${failures.join('\n')}\n`);
    process.exit(1);
  }
}

await main();
