/** What a benchmark scenario gets from the runner. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchContext {
  /** Shorter runs (a quick look, not the figures to report). */
  quick: boolean;
  /** The compiled project root (dist/). */
  dist: string;
  log(line: string): void;
  tmp(prefix: string): string;
  /** Records a named result for the summary. */
  record(name: string, value: unknown): void;
}

export interface Scenario {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

export function makeContext(quick: boolean, dist: string, results: Record<string, unknown>): BenchContext {
  return {
    quick,
    dist,
    log: (line) => process.stdout.write(line + '\n'),
    tmp: (prefix) => mkdtempSync(join(tmpdir(), `cellgate-bench-${prefix}-`)),
    record: (name, value) => {
      results[name] = value;
    },
  };
}
