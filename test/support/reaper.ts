/**
 * Child processes the tests start end with the test process, whatever the outcome: a failed assertion, a
 * timeout or a crash in a test file must not leave a gateway, a peer or a shell running after the run.
 * `reap(child)` registers a child; `reap(child, { group: true })` one spawned with `detached: true`, whose
 * whole process group (an `npm start` and the gateway it runs, a shell and its commands) is ended.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Map<ChildProcess, boolean>();
let hooked = false;

function killAll(): void {
  for (const [child, group] of live) {
    try {
      if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function hook(): void {
  hooked = true;
  process.once('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal);
    });
  }
}

/** Ends `child` (or its process group) when this process ends, unless it has exited by then. */
export function reap<T extends ChildProcess>(child: T, opts: { group?: boolean } = {}): T {
  if (!hooked) hook();
  live.set(child, opts.group === true);
  child.once('exit', () => live.delete(child));
  return child;
}
