/**
 * The short, seeded fuzzing run inside `npm test`: every target replays its committed corpus, then checks a
 * fixed number of generated cases from a fixed seed, so a failure here reproduces exactly (the report gives
 * the shrunk input and the command that replays it). `npm run fuzz -- --minutes N` runs the same targets for
 * as long as asked, with fresh seeds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { failureReport, loadCorpus, propertyOf } from './target.js';
import { TARGETS } from './targets/index.js';

const SEED = 0x5eed;

describe.each(TARGETS.map((t) => [t.name, t] as const))('fuzz target %s', (name, target) => {
  const corpus = loadCorpus(target);

  it('has a seed corpus, and every entry holds the invariants', async () => {
    expect(corpus.length).toBeGreaterThan(0);
    for (const { file, input } of corpus) {
      try {
        await target.check(input);
      } catch (err) {
        throw new Error(`corpus entry ${name}/${file}: ${(err as Error).message}`, { cause: err });
      }
    }
  });

  it(`holds them for ${target.shortRuns} generated cases (seed ${SEED})`, async () => {
    const property = propertyOf(
      target,
      corpus.map((c) => c.input),
    );
    const details = await fc.check(property, { seed: SEED, numRuns: target.shortRuns });
    if (details.failed) expect.fail(failureReport(name, details, target.shortRuns));
    expect(details.numRuns).toBe(target.shortRuns);
  });
});
