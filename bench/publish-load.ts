/**
 * Publishes to an IoT Data Plane endpoint as fast as it answers, for a while, and prints one JSON line: the
 * rate, the CPU time this process used, publishes per CPU-second (the per-core rate) and latency.
 *
 *   node dist/bench/publish-load.js --endpoint http://127.0.0.1:PORT --mode cellgate|naive --seconds 5
 *
 * `naive` is the SDK used as documented: `client.send(new PublishCommand(...))` per message, default client
 * configuration. `cellgate` is the gateway's aws-iot publisher with its default settings. Credentials come
 * from the environment (the SDK's default provider chain) in both modes.
 */
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.js';
import type { Envelope } from '../src/publish/envelope.js';
import { silentLogger } from '../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../src/ops/metrics.js';
import { createPublisher } from '../src/publish/index.js';
import type { PublishError } from '../src/publish/publisher.js';
import { LatencyHistogram } from './histogram.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
    mode: { type: 'string', default: 'cellgate' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '256' },
    connections: { type: 'string', default: '' },
  },
});
const endpoint = values.endpoint as string;
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const concurrency = Number(values.concurrency);

function envelope(i: number): Envelope {
  const device = `dev${i % 100}`;
  return {
    messageId: `bench-${i}`,
    deviceId: device,
    thing: device,
    receivedAt: new Date().toISOString(),
    path: 'telemetry',
    method: 'POST',
    transport: 'coaps',
    pskIdentity: `${device}-psk`,
    remote: { address: '100.64.12.34', port: 41234 },
    coap: { type: 'CON', messageId: i & 0xffff, token: '4f1a22c9' },
    contentFormat: 60,
    codec: 'cbor',
    raw: 'pGF0GQPoYWgYLmFiGQ5sYXMYKg==',
    decoded: { t: 1000, h: 46, b: 3692, s: 42 },
  };
}

type Send = (i: number, done: (err: unknown) => void) => void;

async function sender(): Promise<{ send: Send; close: () => Promise<void> }> {
  if (values.mode === 'naive') {
    const client = new IoTDataPlaneClient({ region: values.region, endpoint });
    return {
      send: (i, done) => {
        const env = envelope(i);
        client
          .send(
            new PublishCommand({
              topic: `cellgate/${env.thing}/telemetry`,
              qos: 1,
              payload: Buffer.from(JSON.stringify(env)),
              contentType: 'application/json',
              userProperties: JSON.stringify([{ messageId: env.messageId }, { deviceId: env.deviceId }]),
            }),
          )
          .then(() => done(null), done);
      },
      close: () => Promise.resolve(client.destroy()),
    };
  }
  const log = silentLogger();
  const metrics = createMetricsRegistry(false);
  const config = parseConfig({
    publisher: {
      type: 'aws-iot',
      endpoint,
      region: values.region,
      concurrency,
      ...(values.connections ? { connections: Number(values.connections) } : {}),
    },
  });
  const publisher = await createPublisher(config.publisher, {
    log,
    metrics,
    caps: new CapReporter(metrics, log),
  });
  return {
    send: (i, done) => {
      const env = envelope(i);
      publisher.publish(
        {
          id: env.messageId,
          topic: `cellgate/${env.thing}/telemetry`,
          deviceId: env.deviceId,
          thing: env.thing,
          envelope: env,
        },
        (err: PublishError | null) => done(err),
      );
    },
    close: () => publisher.close(),
  };
}

async function main(): Promise<void> {
  const { send, close } = await sender();
  const hist = new LatencyHistogram();
  let next = 0;
  let ok = 0;
  let errors = 0;
  let firstError = '';
  let measuring = false;
  let stopped = false;
  let outstanding = 0;
  let drained: () => void = () => {};
  const one = () => {
    const started = performance.now();
    outstanding++;
    send(next++, (err) => {
      outstanding--;
      if (measuring) {
        if (err) {
          errors++;
          firstError ||= String((err as Error).message ?? err);
        } else {
          ok++;
          hist.record(performance.now() - started);
        }
      }
      if (!stopped) one();
      else if (outstanding === 0) drained();
    });
  };
  for (let i = 0; i < concurrency; i++) one();
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stopped = true;
  if (outstanding > 0) await new Promise<void>((r) => (drained = r));
  await close();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(
    `${JSON.stringify({
      mode: values.mode,
      publishes: ok,
      errors,
      firstError,
      seconds: wall,
      rate: Math.round(ok / wall),
      cpuSeconds,
      perCpuSecond: Math.round(ok / cpuSeconds),
      p50ms: hist.quantile(0.5),
      p99ms: hist.quantile(0.99),
    })}\n`,
  );
}

void main();
