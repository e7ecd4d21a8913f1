/**
 * What a pending downlink adds to an uplink: the in-process engine measurement (CoAP engine + gateway + null
 * sink, CPU per exchange) without the downlink layer, with it and nothing pending, and with a pending
 * downlink (desired state and a command, never confirmed, so every response carries them) as JSON and as
 * CBOR. Then the same over real UDP: round-trip time of uplinks from 4 devices, one request each at a time,
 * against the gateway process, first with nothing pending and then with a pending downlink for each.
 */
import { ContentFormat, Option } from '../src/coap/constants.js';
import { downlinkSchema } from '../src/config/downlink.js';
import { createDownlinks } from '../src/downlink/index.js';
import { identify } from '../src/gateway/identity.js';
import { silentLogger } from '../src/ops/logger.js';
import type { MetricsRegistry } from '../src/ops/metrics.js';
import type { BenchContext, Scenario } from './lib/context.js';
import { coapLoad, spawnGateway, writeGatewayConfig, type LoadResult } from './lib/gateway.js';
import { stop, waitForCoap } from './lib/proc.js';
import { engineCostMicros, type EngineVariant } from './scenarios/coap-engine.js';

const DESIRED = { interval: 300, mode: 'eco', thresholds: { temp: 42.5, hum: 80 }, led: [1, 0, 1] };
const COMMAND = { op: 'reboot', delay: 5 };

/** Gives the gateway the downlink layer (memory source and store) and, if asked, every thing a pending downlink. */
function withDownlinks(pending: boolean, accept?: number): EngineVariant {
  let registry: MetricsRegistry | undefined;
  return {
    options: accept === undefined ? [] : [[Option.ACCEPT, accept]],
    async check() {
      // Every response but the first of each device (answered after reading the stores) carried it.
      const text = (await registry?.getSingleMetricAsString('cellgate_downlink_responses_total')) ?? '';
      const attached = Number(/outcome="attached"} (\d+)/.exec(text)?.[1] ?? 0);
      const nothing = Number(/outcome="nothing_pending"} (\d+)/.exec(text)?.[1] ?? 0);
      if (pending ? attached < 1000 || nothing > 0 : attached > 0)
        throw new Error(
          `downlink variant did not do its job: attached ${attached}, nothing pending ${nothing}`,
        );
    },
    async layers({ registry: devices, metrics, caps }) {
      registry = metrics;
      const config = downlinkSchema.parse({ cache: { ttlMs: 600_000 } });
      const downlinks = createDownlinks(config, { log: silentLogger(), metrics, caps });
      if (!downlinks) throw new Error('downlinks disabled');
      if (pending)
        for (let i = 0; i < 100; i++) {
          await downlinks.updateShadow(`dev${i}`, { state: { desired: DESIRED } });
          await downlinks.enqueue(`dev${i}`, JSON.stringify(COMMAND), 3600_000);
        }
      const identity = { queryKey: 'id', byAddress: false };
      return { responder: downlinks, routes: downlinks.routes((ex) => identify(ex, devices, identity)) };
    },
  };
}

/** RTT over UDP against the gateway process, 4 devices: first with nothing pending, then with a pending downlink. */
async function overUdp(ctx: BenchContext): Promise<{ plain: LoadResult; pending: LoadResult }> {
  const coapPort = 47697;
  const httpPort = 47698;
  const config = writeGatewayConfig(
    ctx,
    'downlink',
    coapPort,
    4,
    { type: 'null' },
    {
      sections: { http: { bind: '127.0.0.1', port: httpPort } },
    },
  );
  const server = spawnGateway(ctx, config);
  await waitForCoap(coapPort).catch(async (err: unknown) => {
    await stop(server);
    throw err;
  });
  const rtt = (seconds: number) =>
    coapLoad(ctx, coapPort, 4, ['--seconds', String(seconds), '--id-prefix', 'dev', '--accept', '50']);
  try {
    const seconds = ctx.quick ? 2 : 8;
    await rtt(1); // warm the server up
    const plain = await rtt(seconds);
    for (let i = 0; i < 4; i++) {
      const base = `http://127.0.0.1:${httpPort}/things/dev${i}`;
      const s = await fetch(`${base}/shadow?name=downlink`, {
        method: 'POST',
        body: JSON.stringify({ state: { desired: DESIRED } }),
      });
      const c = await fetch(`${base}/commands`, { method: 'POST', body: JSON.stringify({ data: COMMAND }) });
      if (s.status !== 200 || c.status !== 201) throw new Error('could not set up pending downlinks');
    }
    await rtt(1);
    const pending = await rtt(seconds);
    return { plain, pending };
  } finally {
    await stop(server);
  }
}

export const downlinkScenario: Scenario = {
  name: 'downlink',
  description: 'cost of a pending downlink on an uplink response (in-process CPU, and RTT over UDP)',
  async run(ctx) {
    const n = ctx.quick ? 200_000 : 1_000_000;
    await engineCostMicros(n); // warm-up: the first measurement in a process runs colder
    const base = await engineCostMicros(n);
    const none = await engineCostMicros(n, withDownlinks(false, ContentFormat.JSON));
    const json = await engineCostMicros(n, withDownlinks(true, ContentFormat.JSON));
    const cbor = await engineCostMicros(n, withDownlinks(true, ContentFormat.CBOR));
    const us = (r: { cpuMicros: number }) => `${r.cpuMicros.toFixed(2)} µs`;
    ctx.log(`in-process CPU per exchange: no downlink layer ${us(base)}, nothing pending ${us(none)}`);
    ctx.log(
      `  pending desired state + command: JSON ${us(json)} (+${(json.cpuMicros - none.cpuMicros).toFixed(2)} µs), ` +
        `CBOR ${us(cbor)} (+${(cbor.cpuMicros - none.cpuMicros).toFixed(2)} µs)`,
    );
    const udp = await overUdp(ctx);
    const line = (name: string, r: LoadResult) =>
      `  ${name.padEnd(26)} p50 ${r.p50ms.toFixed(3)} ms  p99 ${r.p99ms.toFixed(3)} ms  ${r.rate}/s  errors ${r.errors}  lost ${r.lost}`;
    ctx.log('UDP round trip, 4 devices one request at a time:');
    ctx.log(line('nothing pending', udp.plain));
    ctx.log(line('pending downlink (JSON)', udp.pending));
    ctx.log(`  difference at p50: ${(udp.pending.p50ms - udp.plain.p50ms).toFixed(3)} ms (target < 1 ms)`);
    ctx.record('downlink', { base, none, json, cbor, udp });
  },
};
