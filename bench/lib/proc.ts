/** Process helpers for benchmarks: CPU pinning, readiness, resident memory. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';

const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;

/** Runs a command pinned to one core when `taskset` exists (server on core 0, load on core 1). */
export function spawnPinned(
  core: number,
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ChildProcess {
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
  return spawn(cmd, argv, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function pinningNote(): string {
  return hasTaskset
    ? 'server pinned to core 0, load generator to core 1 (taskset)'
    : 'no taskset: processes not pinned';
}

/** Resident set size of a process in bytes (Linux /proc), or 0 when unknown. */
export function rssBytes(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU time (user + system) a process has used, in seconds (Linux /proc), or 0 when unknown. With `tid`, that
 * of one of its threads (the main thread's id is the process id).
 */
export function cpuSeconds(pid: number | undefined, tid?: number): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(
      tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`,
      'utf8',
    );
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The pid of the real server when it runs under taskset (taskset execs, so it is the same pid). */
export function serverPid(child: ChildProcess): number | undefined {
  return child.pid;
}

/** Resolves when a CoAP server on a UDP port answers a ping (empty CON → RST). */
export async function waitForCoap(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const s = createSocket('udp4');
  try {
    while (Date.now() < deadline) {
      const answered = await new Promise<boolean>((resolve) => {
        const onMessage = (): void => {
          clearTimeout(t);
          resolve(true);
        };
        const t = setTimeout(() => {
          s.off('message', onMessage);
          resolve(false);
        }, 200);
        s.once('message', onMessage);
        s.send(Buffer.from([0x40, 0, 0x12, 0x34]), port, '127.0.0.1');
      });
      if (answered) return;
    }
    throw new Error(`no CoAP server answered on port ${port}`);
  } finally {
    s.close();
  }
}

export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

/** Collects a child's stdout and resolves with it when the child exits. */
export function output(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err || out}`)),
    );
  });
}
