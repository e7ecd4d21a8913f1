/**
 * The whole gateway across `kill -9` with `ack: after-outbox`: CoAP devices send CON uplinks while IoT Core
 * (the test server) is first up, then down; the gateway process is killed mid-load. Every uplink that was
 * answered 2.04 must reach IoT Core once a new gateway process runs on the same outbox.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { encodeMessage, parseMessage } from '../../src/coap/message.js';
import { nextMessage, spawnTs } from '../support/child.js';
import { FAULTS, IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';
import { UdpClient } from '../support/udp-client.js';
import { sleep } from './helpers.js';

const CHILD = fileURLToPath(new URL('./gateway-crash-child.ts', import.meta.url));
const DEVICES = 8;
let server: IotDataPlaneServer;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await IotDataPlaneServer.start();
  dir = mkdtempSync(join(tmpdir(), 'cellgate-gw-crash-'));
  writeFileSync(
    join(dir, 'devices.yaml'),
    stringify(Array.from({ length: DEVICES }, (_, i) => ({ id: `dev-${i}` }))),
  );
  writeFileSync(
    join(dir, 'cellgate.yaml'),
    stringify({
      coap: { bind: '127.0.0.1', port: 0, dtlsPort: 0 },
      http: { bind: '127.0.0.1', port: 0 },
      devices: { file: 'devices.yaml', watch: false },
      publisher: {
        type: 'aws-iot',
        endpoint: server.url,
        region: 'us-east-1',
        ack: 'after-outbox',
        outbox: { dir: 'outbox', cursorIntervalMs: 50 },
        requestTimeoutMs: 300,
        deadlineMs: 1000,
        breaker: { failureThreshold: 5, openMs: 200, maxOpenMs: 400 },
      },
      log: { level: 'silent' },
    }),
  );
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startGatewayProcess(): Promise<{ child: ChildProcess; coapPort: number }> {
  const child = spawnTs(CHILD, [join(dir, 'cellgate.yaml')], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIAL.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIAL.secretAccessKey,
    },
  });
  children.push(child);
  const m = await nextMessage<{ coapPort: number }>(child, 'ready');
  return { child, coapPort: m.coapPort };
}

it(
  'delivers every uplink answered 2.04 after the gateway is killed mid-load',
  { timeout: 60_000 },
  async () => {
    const { child, coapPort } = await startGatewayProcess();
    const acked = new Set<string>();
    let stop = false;
    let mid = 1;
    const device = async (d: number) => {
      const c = await UdpClient.open();
      try {
        for (let n = 0; !stop; n++) {
          const body = `up-${d}-${n}`;
          const answer = await c.request(
            encodeMessage({
              type: MessageType.CON,
              code: Code.POST,
              messageId: mid++ & 0xffff,
              token: Buffer.from([d, n & 0xff]),
              options: [
                [Option.URI_PATH, 'telemetry'],
                [Option.URI_QUERY, `id=dev-${d}`],
              ],
              payload: Buffer.from(body),
            }),
            coapPort,
            500,
          );
          const m = answer && parseMessage(answer);
          if (m && 'code' in m && m.code === Code.CHANGED) acked.add(body);
        }
      } finally {
        await c.close();
      }
    };
    const load = Promise.all(Array.from({ length: DEVICES }, (_, d) => device(d)));
    const waitAcked = async (n: number) => {
      const t0 = Date.now();
      while (acked.size < n) {
        if (Date.now() - t0 > 20_000) throw new Error(`only ${acked.size} uplinks answered 2.04`);
        await sleep(10);
      }
    };
    await waitAcked(150);
    server.inject(FAULTS.unavailable, Infinity, 'publish');
    await waitAcked(acked.size + 300);
    child.kill('SIGKILL');
    stop = true;
    await load;

    const delivered = () =>
      new Set(
        server.publishes.map((p) => Buffer.from(JSON.parse(p.payload.toString()).raw, 'base64').toString()),
      );
    expect([...acked].filter((b) => !delivered().has(b)).length).toBeGreaterThan(0);

    server.clearFaults();
    const second = await startGatewayProcess();
    let missing = [...acked];
    const t0 = Date.now();
    while (missing.length > 0 && Date.now() - t0 < 20_000) {
      await sleep(50);
      const got = delivered();
      missing = missing.filter((b) => !got.has(b));
    }
    expect(missing).toEqual([]);
    second.child.send({ type: 'close' });
    await nextMessage(second.child, 'closed');
  },
);
