/** Running real peers (openssl, gnutls-cli, libcoap clients) as child processes in tests. */
import { spawn } from 'node:child_process';
import { reap } from './reaper.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin (which then stays open until the process ends, like an interactive user). */
  input?: string;
  /** Kill the process once stdout contains this. */
  until?: string | RegExp;
  timeoutMs?: number;
}

/** Runs a command; resolves when it exits, when `until` appears on stdout, or on timeout (then killed). */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = reap(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (code: number | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(null);
    }, opts.timeoutMs ?? 10_000);
    const matches = (): boolean =>
      opts.until !== undefined &&
      (typeof opts.until === 'string' ? stdout.includes(opts.until) : opts.until.test(stdout));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (matches()) {
        child.kill('SIGTERM');
        finish(0);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => finish(code));
    if (opts.input !== undefined) child.stdin.write(opts.input);
    else child.stdin.end();
  });
}
