/**
 * `npm run bench [-- [--quick] [scenario…]]`: runs the benchmark scenarios and prints their figures.
 * Load generators and servers run as separate processes pinned to separate cores.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeContext } from './lib/context.js';
import { pinningNote } from './lib/proc.js';
import { scenarios } from './scenarios/index.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(
      'usage: npm run bench -- [--quick] [scenario…]\n\n' +
        scenarios.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n') +
        '\n',
    );
    return;
  }
  const flags = args.filter((a) => a.startsWith('-'));
  const badFlags = flags.filter((f) => f !== '--quick');
  if (badFlags.length) {
    process.stderr.write(`unknown option(s): ${badFlags.join(', ')} (try --help)\n`);
    process.exit(2);
  }
  const quick = flags.includes('--quick');
  const wanted = args.filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !scenarios.some((s) => s.name === w));
  if (unknown.length) {
    process.stderr.write(
      `unknown scenario(s): ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}\n`,
    );
    process.exit(2);
  }
  const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
  const results: Record<string, unknown> = {};
  const ctx = makeContext(quick, dist, results);
  ctx.log(
    `cellgate benchmarks — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${pinningNote()}${quick ? '; QUICK run' : ''}`,
  );
  for (const s of scenarios) {
    if (wanted.length && !wanted.includes(s.name)) continue;
    ctx.log(`\n== ${s.name}: ${s.description}`);
    await s.run(ctx);
  }
  const out = join(dist, '..', '.bench');
  mkdirSync(out, { recursive: true });
  const file = join(out, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ node: process.version, quick, results }, null, 2));
  ctx.log(`\nresults written to ${file}`);
}

void main();
