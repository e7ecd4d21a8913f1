/** `cellgate simulate`: parses the options, runs the simulation, prints the summary. */
import { UsageError } from '../config/errors.js';
import { parseSimOptions, SIMULATE_USAGE } from './options.js';
import { runSimulation } from './simulate.js';
import { formatSummary } from './stats.js';

/** Exit code: 0 when every uplink was acknowledged, 1 when some were not, 2 for bad options. */
export async function simulateCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SIMULATE_USAGE);
    return 0;
  }
  let opts;
  try {
    opts = parseSimOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`cellgate simulate: ${err.message}\n\n${SIMULATE_USAGE}`);
    return 2;
  }
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  process.once('SIGINT', onInterrupt);
  try {
    const summary = await runSimulation(opts, { progress: process.stderr, signal: abort.signal });
    process.stdout.write(opts.json ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(summary));
    return summary.acknowledged === summary.uplinks ? 0 : 1;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
