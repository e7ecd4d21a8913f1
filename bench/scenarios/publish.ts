/**
 * Publishing to AWS IoT Core's Data Plane API with SigV4, per core: the gateway's aws-iot publisher next to
 * the naive SDK loop, each in its own process pinned to one core, against the test IoT Data Plane server
 * (signature verification on, publishes counted, not kept) pinned to the other core. The per-core figure is
 * publishes per CPU-second of the publishing process.
 */
import { join } from 'node:path';
import type { BenchContext, Scenario } from '../lib/context.js';
import { cpuSeconds, output, spawnPinned, stop } from '../lib/proc.js';

interface PublishResult {
  mode: string;
  publishes: number;
  errors: number;
  firstError: string;
  seconds: number;
  rate: number;
  cpuSeconds: number;
  perCpuSecond: number;
  p50ms: number;
  p99ms: number;
}

/** Credentials the server accepts; the publishers find them through the SDK's default chain (environment). */
const ACCESS_KEY_ID = 'AKIDCELLGATEBENCH';
const SECRET = 'cellgate-bench-secret';

export async function startIotServer(
  ctx: BenchContext,
  core: number,
): Promise<{ url: string; pid?: number; stop: () => Promise<void> }> {
  const child = spawnPinned(core, process.execPath, [
    join(ctx.dist, 'test/support/iot-data-plane-server-main.js'),
    '--no-record',
    '--access-key-id',
    ACCESS_KEY_ID,
    '--secret-access-key',
    SECRET,
  ]);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`IoT Data Plane server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stop(child) };
}

export const benchCredentials = { AWS_ACCESS_KEY_ID: ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET };

async function run(
  ctx: BenchContext,
  url: string,
  serverPid: number | undefined,
  mode: string,
): Promise<PublishResult> {
  const seconds = ctx.quick ? 3 : 10;
  const before = cpuSeconds(serverPid);
  const child = spawnPinned(
    0,
    process.execPath,
    [
      join(ctx.dist, 'bench/publish-load.js'),
      '--endpoint',
      url,
      '--mode',
      mode,
      '--seconds',
      String(seconds),
    ],
    { env: { ...process.env, ...benchCredentials } },
  );
  const r = JSON.parse((await output(child)).trim().split('\n').pop() as string) as PublishResult;
  const serverBusy = (cpuSeconds(serverPid) - before) / (r.seconds + 1.5);
  ctx.log(
    `${mode.padEnd(34)} ${String(r.rate).padStart(6)}/s  ${String(r.perCpuSecond).padStart(6)} per CPU-second  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms  errors ${r.errors}  (server core ~${Math.round(serverBusy * 100)}% busy)`,
  );
  if (r.errors > 0) ctx.log(`  first error: ${r.firstError}`);
  return r;
}

export const publishAwsIot: Scenario = {
  name: 'publish',
  description: 'aws-iot publisher vs naive SDK loop, SigV4 to a local IoT Data Plane server, per core',
  async run(ctx) {
    const server = await startIotServer(ctx, 0);
    try {
      const naive = await run(ctx, server.url, server.pid, 'naive');
      const ours = await run(ctx, server.url, server.pid, 'cellgate');
      ctx.log(`cellgate / naive: ${(ours.perCpuSecond / naive.perCpuSecond).toFixed(1)}× per CPU-second`);
      ctx.record('publish.naive', naive);
      ctx.record('publish.cellgate', ours);
    } finally {
      await server.stop();
    }
  },
};
