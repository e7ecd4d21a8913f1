/**
 * NoSec CoAP throughput, latency and memory: CON POSTs (20-byte payload) from 100 simulated devices at
 * cellgate (null sink) on one core; then, under the same load, libcoap's coap-server-notls and node-coap's
 * server. The cellgate run is a soak of 5 million requests with resident memory sampled each second.
 */
import { join } from 'node:path';
import type { BenchContext, Scenario } from '../lib/context.js';
import { coapLoad, spawnGateway, writeGatewayConfig, type LoadResult } from '../lib/gateway.js';
import { rssBytes, spawnPinned, stop, waitForCoap } from '../lib/proc.js';

const DEVICES = 100;
const MB = 1024 * 1024;

const load = (ctx: BenchContext, port: number, args: string[]) => coapLoad(ctx, port, DEVICES, args);

function line(name: string, r: LoadResult, extra = ''): string {
  return `${name.padEnd(22)} ${String(r.rate).padStart(7)}/s  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms  errors ${r.errors}  lost ${r.lost}${extra}`;
}

async function cellgate(ctx: BenchContext, port: number): Promise<void> {
  const config = writeGatewayConfig(ctx, 'nosec', port, DEVICES, { type: 'null' });
  const server = spawnGateway(ctx, config);
  try {
    await waitForCoap(port);
    const requests = ctx.quick ? 500_000 : 5_000_000;
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssBytes(server.pid)), 1000);
    const r = await load(ctx, port, ['--requests', String(requests), '--id-prefix', 'dev', '--warmup', '2']);
    clearInterval(sampler);
    samples.push(rssBytes(server.pid));
    const after = samples.slice(Math.min(5, samples.length - 1));
    const peak = Math.max(...samples);
    const first = after[0] ?? 0;
    const last = samples[samples.length - 1];
    ctx.log(
      line(
        'cellgate (null sink)',
        r,
        `  RSS ${Math.round(first / MB)} MB after warm-up → ${Math.round(last / MB)} MB after ${(r.exchanges / 1e6).toFixed(1)} M requests (peak ${Math.round(peak / MB)} MB)`,
      ),
    );
    ctx.record('coap-nosec.cellgate', {
      ...r,
      rssWarmMB: first / MB,
      rssEndMB: last / MB,
      rssPeakMB: peak / MB,
    });
  } finally {
    await stop(server);
  }
}

async function reference(
  ctx: BenchContext,
  name: string,
  port: number,
  command: string,
  args: string[],
): Promise<void> {
  const server = spawnPinned(0, command, args);
  try {
    await waitForCoap(port);
    const r = await load(ctx, port, ['--seconds', ctx.quick ? '3' : '10', '--id-prefix', 'dev']);
    ctx.log(line(name, r, `  RSS ${Math.round(rssBytes(server.pid) / MB)} MB`));
    ctx.record(`coap-nosec.${name}`, { ...r, rssMB: rssBytes(server.pid) / MB });
  } finally {
    await stop(server);
  }
}

export const coapNosec: Scenario = {
  name: 'coap',
  description: 'NoSec CON POSTs from 100 devices: cellgate vs libcoap coap-server-notls vs node-coap',
  async run(ctx) {
    await cellgate(ctx, 47683);
    await reference(ctx, 'libcoap coap-server', 47684, 'coap-server-notls', [
      '-A',
      '127.0.0.1',
      '-p',
      '47684',
      '-d',
      '1000',
    ]);
    await reference(ctx, 'node-coap server', 47685, process.execPath, [
      join(ctx.dist, 'bench/node-coap-server.js'),
      '47685',
    ]);
  },
};
