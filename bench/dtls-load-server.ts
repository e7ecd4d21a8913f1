/**
 * The DTLS listener as a process of its own, for load benchmarks: devices dev0…dev<N-1> share the key
 * "secretPSK", and every CoAP request is answered (2.04, piggybacked). Prints `PORT <n>`; each line
 * `report` on stdin prints one JSON line with its resident memory, CPU time and counters.
 *
 *   node dist/bench/dtls-load-server.js [devices=10000] [port=0]
 */
import { createInterface } from 'node:readline';
import { dtlsSchema } from '../src/config/dtls.js';
import { MemoryRegistry } from '../src/devices/index.js';
import { createDtlsListener } from '../src/dtls/listener.js';
import { silentLogger } from '../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../src/ops/metrics.js';
import { answer } from '../test/support/coap-responder.js';
import { devices } from './dtls-inprocess.js';

const count = Number(process.argv[2] ?? 10_000);
const log = silentLogger();
const metrics = createMetricsRegistry(false);
const listener = await createDtlsListener({
  bind: '127.0.0.1',
  port: Number(process.argv[3] ?? 0),
  socketBufferBytes: 8 * 1024 * 1024,
  config: dtlsSchema.parse({ maxSessions: count, maxHandshakes: count, maxHandshakesPerAddress: count }),
  registry: new MemoryRegistry(devices(count)),
  log,
  metrics,
  caps: new CapReporter(metrics, log),
  onApplicationData: answer,
});
console.log(`PORT ${listener.port}`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'report') return;
  const cpu = process.cpuUsage();
  const s = listener.server.stats;
  console.log(
    JSON.stringify({
      rss: process.memoryUsage().rss,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      sessions: listener.server.sessionCount,
      handshakes: s.handshakesCompleted,
      recordsIn: s.recordsIn,
    }),
  );
});
process.stdin.on('end', () => void listener.close().then(() => process.exit(0)));
