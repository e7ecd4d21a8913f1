/**
 * `npm run bench`: runs the benchmarks one after another, each in a process of its own so that one does
 * not warm up or fill the heap of the next. Figures vary with the machine: run on a quiet one.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const BENCHES: [string, ...string[]][] = [
  ['dtls-handshakes.js'],
  ['dtls-sessions.js', '100000'],
  ['dtls-load.js'],
];

let failed = false;
for (const [script, ...args] of BENCHES) {
  const r = spawnSync(process.execPath, [join(here, script), ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`${script} failed (${r.status ?? r.signal})`);
    failed = true;
  }
}
process.exitCode = failed ? 1 : 0;
