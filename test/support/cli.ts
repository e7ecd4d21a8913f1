/** Runs the built CLI (`node dist/src/cli.js …`) as a user would, and collects its exit code and output. */
import { spawn } from 'node:child_process';
import { assertBuilt, CLI } from './child-gateway.js';
import { reap } from './reaper.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** The environment besides PATH (nothing else of the test's environment leaks in). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = reap(
      spawn(process.execPath, [CLI, ...args], {
        cwd: opts.cwd,
        env: { PATH: process.env.PATH ?? '', ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Stack-trace lines ("    at f (file:…)") in a text. */
export const STACK_LINE = /^\s+at .+/m;
