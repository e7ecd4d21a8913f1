/**
 * The IoT Data Plane test server as a process of its own (benchmarks pin it to another core):
 *
 *   node iot-data-plane-server-main.js [--port 0] [--host 127.0.0.1] [--region us-east-1]
 *        [--access-key-id ID --secret-access-key SECRET [--session-token T]] [--no-record] [--no-verify]
 *
 * Prints `{"port":N}` on stdout once listening. Under a parent with an IPC channel it also sends
 * `{type:'listening', port}` and answers `{type:'stats'}` (counters and CPU time), `{type:'inject', fault,
 * count, route}`, `{type:'clear'}` and `{type:'publishes'}` (recorded publishes, payloads in base64).
 * Exits on SIGTERM, SIGINT or when the parent goes away.
 */
import { parseArgs } from 'node:util';
import { IotDataPlaneServer, TEST_CREDENTIAL, type Fault, type Route } from './iot-data-plane-server.js';

export type ServerCommand =
  | { type: 'stats' }
  | { type: 'inject'; fault: Fault; count?: number; route?: Route }
  | { type: 'clear' }
  | { type: 'publishes' };

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    region: { type: 'string', default: 'us-east-1' },
    'access-key-id': { type: 'string', default: TEST_CREDENTIAL.accessKeyId },
    'secret-access-key': { type: 'string', default: TEST_CREDENTIAL.secretAccessKey },
    'session-token': { type: 'string' },
    'no-record': { type: 'boolean', default: false },
    'no-verify': { type: 'boolean', default: false },
  },
});

const server = await IotDataPlaneServer.start({
  port: Number(values.port),
  host: values.host,
  region: values.region,
  credentials: [
    {
      accessKeyId: values['access-key-id'],
      secretAccessKey: values['secret-access-key'],
      sessionToken: values['session-token'],
    },
  ],
  record: !values['no-record'],
  verify: !values['no-verify'],
});

process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);

const stop = () => {
  void server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

if (process.send) {
  process.send({ type: 'listening', port: server.port });
  process.on('disconnect', stop);
  process.on('message', (cmd: ServerCommand) => {
    switch (cmd.type) {
      case 'stats':
        process.send!({ type: 'stats', stats: server.stats, cpu: process.cpuUsage() });
        break;
      case 'inject':
        server.inject(cmd.fault, cmd.count ?? 1, cmd.route ?? 'any');
        break;
      case 'clear':
        server.clearFaults();
        break;
      case 'publishes':
        process.send!({
          type: 'publishes',
          publishes: server.publishes.map((p) => ({ ...p, payload: p.payload.toString('base64') })),
        });
        break;
    }
  });
}
