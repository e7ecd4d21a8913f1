/**
 * End to end: NoSec CoAP CON uplinks from 100 devices through the gateway to AWS IoT Core's Data Plane API
 * (the test server, SigV4 checked), with `ack: after-publish` and with `ack: after-outbox`. The gateway runs
 * on one core; the load generator and the IoT Data Plane server share the other. The per-core figure is
 * uplinks per CPU-second of the gateway process.
 */
import type { BenchContext, Scenario } from '../lib/context.js';
import { coapLoad, spawnGateway, writeGatewayConfig } from '../lib/gateway.js';
import { cpuSeconds, rssBytes, stop, waitForCoap } from '../lib/proc.js';
import { benchCredentials, startIotServer } from './publish.js';

const DEVICES = 100;

async function gatewayRun(
  ctx: BenchContext,
  endpoint: string,
  ack: 'after-publish' | 'after-outbox',
  port: number,
) {
  const config = writeGatewayConfig(ctx, `coap-iot-${ack}`, port, DEVICES, {
    type: 'aws-iot',
    endpoint,
    region: 'us-east-1',
    ack,
    outbox: { dir: 'outbox' },
  });
  const gw = spawnGateway(ctx, config, { ...process.env, ...benchCredentials });
  try {
    await waitForCoap(port);
    const cpu0 = cpuSeconds(gw.pid);
    const r = await coapLoad(ctx, port, DEVICES, [
      '--id-prefix',
      'dev',
      '--seconds',
      ctx.quick ? '3' : '10',
      '--warmup',
      '1',
    ]);
    const cpu = cpuSeconds(gw.pid) - cpu0;
    const perCpu = cpu > 0 ? Math.round(r.exchanges / cpu) : 0;
    ctx.log(
      `CoAP → IoT (${ack})`.padEnd(34) +
        ` ${String(r.rate).padStart(6)}/s  ${String(perCpu).padStart(6)} per gateway CPU-second  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms  errors ${r.errors}  lost ${r.lost}  RSS ${Math.round(rssBytes(gw.pid) / 1048576)} MB`,
    );
    ctx.record(`coap-iot.${ack}`, { ...r, gatewayCpuSeconds: cpu, perGatewayCpuSecond: perCpu });
  } finally {
    await stop(gw);
  }
}

export const coapIot: Scenario = {
  name: 'coap-iot',
  description: 'NoSec CoAP uplinks → gateway → IoT Data Plane (SigV4), after-publish and after-outbox',
  async run(ctx) {
    const server = await startIotServer(ctx, 1);
    try {
      await gatewayRun(ctx, server.url, 'after-publish', 47693);
      await gatewayRun(ctx, server.url, 'after-outbox', 47694);
    } finally {
      await server.stop();
    }
  },
};
