/**
 * The outbox across `kill -9`: a child process publishes through an aws-iot publisher with `ack:
 * after-outbox` while IoT Core (the test server) is first healthy, then down; the child is killed mid-load.
 * A new child on the same outbox folder must deliver every message the first one acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nextMessage, spawnTs } from '../support/child.js';
import { FAULTS, IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';
import { sleep } from './helpers.js';

const CHILD = fileURLToPath(new URL('./outbox-crash-child.ts', import.meta.url));
const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: TEST_CREDENTIAL.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIAL.secretAccessKey,
};

let server: IotDataPlaneServer;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await IotDataPlaneServer.start();
  dir = mkdtempSync(join(tmpdir(), 'cellgate-crash-'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(args: string[]): ChildProcess {
  const child = spawnTs(CHILD, args, { env });
  children.push(child);
  return child;
}

it('delivers every acknowledged message after kill -9 mid-load', { timeout: 60_000 }, async () => {
  const acked = new Set<string>();
  const loader = start(['load', server.url, dir, 'crash']);
  loader.on('message', (m: { type?: string; ids?: string[] }) => {
    if (m.type === 'acked') for (const id of m.ids!) acked.add(id);
  });
  await nextMessage(loader, 'ready');

  const waitAcked = async (n: number) => {
    const t0 = Date.now();
    while (acked.size < n) {
      if (Date.now() - t0 > 15_000) throw new Error(`only ${acked.size} acknowledged`);
      await sleep(10);
    }
  };
  await waitAcked(500); // healthy: delivered as it goes
  expect(server.stats.publishes).toBeGreaterThan(0);
  server.inject(FAULTS.unavailable, Infinity, 'publish'); // IoT Core goes down: the outbox fills
  const down = acked.size;
  await waitAcked(down + 1500);
  const exited = new Promise((r) => loader.once('exit', r));
  loader.kill('SIGKILL');
  await exited;
  const before = server.stats.publishes;
  const delivered = () =>
    new Set(server.publishes.map((p) => p.userProperties.find(([k]) => k === 'messageId')?.[1]));
  const missingBefore = [...acked].filter((id) => !delivered().has(id)).length;
  expect(missingBefore).toBeGreaterThan(0); // the crash really left undelivered, acknowledged messages behind

  server.clearFaults(); // IoT Core is back
  const drainer = start(['drain', server.url, dir]);
  await nextMessage(drainer, 'ready');
  const t0 = Date.now();
  let missing = [...acked];
  while (missing.length > 0 && Date.now() - t0 < 20_000) {
    await sleep(50);
    const got = delivered();
    missing = missing.filter((id) => !got.has(id));
  }
  expect(missing).toEqual([]);
  expect(server.stats.publishes).toBeGreaterThan(before);
  for (const p of server.publishes.slice(-50)) {
    const envelope = JSON.parse(p.payload.toString());
    expect(p.userProperties).toContainEqual(['messageId', envelope.messageId]);
    expect(p.topic).toBe('crash/crash/telemetry');
  }
  drainer.send({ type: 'close' });
  await nextMessage(drainer, 'closed');
});
