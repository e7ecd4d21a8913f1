/** `npm run bench`: runs the benchmarks briefly. `--seconds N` sets the time per measurement. */
import { runCodecBench } from './codecs.js';

const i = process.argv.indexOf('--seconds');
const seconds = i > 0 ? Number(process.argv[i + 1]) : 1;
await runCodecBench(Number.isFinite(seconds) && seconds > 0 ? seconds : 1);
