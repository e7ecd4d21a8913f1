/** Runs a TypeScript script of the project in a child process (the tests' crash and multi-process cases). */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REGISTER = fileURLToPath(new URL('./ts-register.mjs', import.meta.url));

export function spawnTs(script: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, ['--import', REGISTER, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    ...opts,
  });
}

/** Resolves with the first IPC message of `child` that matches, or rejects when the child exits first. */
export function nextMessage<T>(
  child: ChildProcess,
  match: (m: unknown) => m is T,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onErr = (d: Buffer) => (stderr += d.toString());
    const timer = setTimeout(
      () => finish(new Error(`no message from child within ${timeoutMs} ms; stderr: ${stderr}`)),
      timeoutMs,
    );
    const onMessage = (m: unknown) => {
      if (match(m)) finish(null, m);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`child exited (${code ?? signal}) before answering; stderr: ${stderr}`));
    function finish(err: Error | null, m?: T) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.stderr?.off('data', onErr);
      if (err) reject(err);
      else resolve(m as T);
    }
    child.stderr?.on('data', onErr);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}
