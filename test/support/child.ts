/** Runs a TypeScript script of the project in a child process (the tests' crash and multi-process cases). */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { reap } from './reaper.js';

const REGISTER = fileURLToPath(new URL('./ts-register.mjs', import.meta.url));

export function spawnTs(script: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
  return reap(
    spawn(process.execPath, ['--import', REGISTER, script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      ...opts,
    }),
  );
}

/** Resolves with the first IPC message `{type, …}` of `child` with this type, or rejects when the child exits first. */
export function nextMessage<T extends object = Record<string, unknown>>(
  child: ChildProcess,
  type: string,
  timeoutMs = 15_000,
): Promise<T & { type: string }> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onErr = (d: Buffer) => (stderr += d.toString());
    const timer = setTimeout(
      () => finish(new Error(`no ${type} message from child within ${timeoutMs} ms; stderr: ${stderr}`)),
      timeoutMs,
    );
    const onMessage = (m: unknown) => {
      if ((m as { type?: unknown } | null)?.type === type) finish(null, m as T & { type: string });
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`child exited (${code ?? signal}) before answering; stderr: ${stderr}`));
    function finish(err: Error | null, m?: T & { type: string }) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.stderr?.off('data', onErr);
      if (err) reject(err);
      else resolve(m as T & { type: string });
    }
    child.stderr?.on('data', onErr);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}
