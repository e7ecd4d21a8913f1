/**
 * Runs the built gateway (`node dist/src/cli.js start`) as a child process in a temporary folder, on ephemeral
 * ports, and reads its JSON log lines. For what only a real process shows: signals, exit codes, the CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { merge } from './gateway.js';
import { reap } from './reaper.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Fails clearly when the build is missing or older than the sources (`npm test` builds first). */
export function assertBuilt(): void {
  let built: number;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does) before this test');
  }
  if (built < newestMtime(join(ROOT, 'src'))) {
    throw new Error('dist is older than src: run `npm run build` (npm test does) before this test');
  }
}

export interface LogLine {
  level: string;
  msg: string;
  time: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

export interface ChildGateway {
  dir: string;
  proc: ChildProcess;
  coapPort: number;
  /** The DTLS port (NaN when DTLS is off). */
  dtlsPort: number;
  httpPort: number;
  logs: LogLine[];
  /** Standard output lines that are not JSON log lines. */
  other: string[];
  stderr: string[];
  exited: Promise<Exit>;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Kills the process if still running and removes its folder. */
  cleanup(): Promise<void>;
}

export interface ChildGatewayOptions {
  config: Record<string, unknown>;
  devices: unknown[];
  /** Extra files in the folder (name → content). */
  files?: Record<string, string>;
  env?: Record<string, string>;
}

export async function startChildGateway(opts: ChildGatewayOptions): Promise<ChildGateway> {
  assertBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-child-'));
  writeFileSync(join(dir, 'devices.yaml'), stringify(opts.devices));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  // Ephemeral ports only, whatever the test's own config sections say.
  const config = merge(
    {
      coap: { bind: '127.0.0.1', port: 0, dtlsPort: 0 },
      http: { bind: '127.0.0.1', port: 0 },
      devices: { file: 'devices.yaml', watch: false },
    },
    opts.config,
  );
  writeFileSync(join(dir, 'cellgate.yaml'), stringify(config));
  const proc = reap(
    spawn(process.execPath, [CLI, 'start', '--config', join(dir, 'cellgate.yaml')], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const logs: LogLine[] = [];
  const other: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  let pending = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        other.push(line);
      }
    }
    for (const w of waiters) w();
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<Exit>((resolve) =>
    proc.once('exit', (code, signal) => {
      resolve({ code, signal, at: Date.now() });
      for (const w of waiters) w();
    }),
  );
  let done = false;
  void exited.then(() => (done = true));

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const hit = logs.find(pred);
        if (hit) {
          finish();
          resolve(hit);
        } else if (done) {
          finish();
          reject(new Error(`gateway exited before the expected log line; stderr: ${stderr.join('')}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no such log line within ${timeoutMs} ms; stderr: ${stderr.join('')}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const cleanup = async () => {
    if (!done) {
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ready = await waitForLog((l) => l.msg === 'cellgate listening');
    const port = (s: unknown) => Number(String(s).split(':').pop());
    return {
      dir,
      proc,
      coapPort: port(ready.coap),
      dtlsPort: port(ready.dtls),
      httpPort: port(ready.http),
      logs,
      other,
      stderr,
      exited,
      waitForLog,
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
