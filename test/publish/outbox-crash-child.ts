/**
 * Child process of the outbox crash test: an aws-iot publisher with `ack: after-outbox`.
 *   load  <endpoint> <dir> <prefix>: publishes `<prefix>-<n>` without end, reporting acknowledged ids over IPC
 *   drain <endpoint> <dir>:          only delivers what the outbox holds, until told to close
 */
import { parseConfig } from '../../src/config/load.js';
import { createPublisher } from '../../src/publish/index.js';
import { deps, message } from './helpers.js';

const [mode, endpoint, dir, prefix] = process.argv.slice(2);
const config = parseConfig({
  publisher: {
    type: 'aws-iot',
    endpoint,
    region: 'us-east-1',
    ack: 'after-outbox',
    outbox: { dir, cursorIntervalMs: 50, maxInFlight: 64 },
    requestTimeoutMs: 300,
    deadlineMs: 1000,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    breaker: { failureThreshold: 5, openMs: 200, maxOpenMs: 400 },
  },
});
const publisher = await createPublisher(config.publisher, deps());

process.on('message', (m: { type?: string }) => {
  if (m.type === 'close')
    void publisher.close().then(() => process.send!({ type: 'closed' }, () => process.exit(0)));
});
process.send!({ type: 'ready' });

if (mode === 'load') {
  let next = 0;
  let outstanding = 0;
  let acked: string[] = [];
  const flush = () => {
    if (acked.length > 0) {
      process.send!({ type: 'acked', ids: acked });
      acked = [];
    }
  };
  setInterval(flush, 5);
  const pump = () => {
    while (outstanding < 64) {
      const id = `${prefix}-${next++}`;
      outstanding++;
      publisher.publish(message(id, `crash/${prefix}/telemetry`), (err) => {
        outstanding--;
        if (!err) acked.push(id);
        setImmediate(pump);
      });
    }
  };
  pump();
}
