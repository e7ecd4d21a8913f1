/** Benchmark gateways: their config and device files, and the CoAP load run against them. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { BenchContext } from './context.js';
import { output, spawnPinned } from './proc.js';

/** What `coap-load.js` prints. */
export interface LoadResult {
  rate: number;
  exchanges: number;
  errors: number;
  lost: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
  seconds: number;
}

/** Runs the CoAP load generator on core 1 against `port` with `devices` devices and 20-byte payloads. */
export async function coapLoad(
  ctx: BenchContext,
  port: number,
  devices: number,
  args: string[],
): Promise<LoadResult> {
  const child = spawnPinned(1, process.execPath, [
    join(ctx.dist, 'bench/coap-load.js'),
    '--port',
    String(port),
    '--devices',
    String(devices),
    '--payload',
    '20',
    ...args,
  ]);
  return JSON.parse((await output(child)).trim().split('\n').pop() as string) as LoadResult;
}

/** Writes a gateway's config and device file (`dev0`…) into a fresh folder; returns the config path. */
export function writeGatewayConfig(
  ctx: BenchContext,
  name: string,
  port: number,
  devices: number,
  publisher: Record<string, unknown>,
  more: {
    /** More fields of device `i` (e.g. its PSK). */
    device?: (i: number) => Record<string, unknown>;
    /** More config sections (e.g. `dtls`), and `coap` fields merged over the defaults. */
    config?: Record<string, unknown>;
  } = {},
): string {
  const dir = ctx.tmp(name);
  writeFileSync(
    join(dir, 'devices.yaml'),
    stringify(Array.from({ length: devices }, (_, i) => ({ id: `dev${i}`, ...more.device?.(i) }))),
  );
  const { coap, ...sections } = more.config ?? {};
  writeFileSync(
    join(dir, 'gw.yaml'),
    stringify({
      coap: { bind: '127.0.0.1', port, nosec: true, ...(coap as Record<string, unknown> | undefined) },
      http: { bind: '127.0.0.1', port: 0 },
      devices: { file: 'devices.yaml', watch: false },
      publisher,
      log: { level: 'error' },
      ...sections,
    }),
  );
  return join(dir, 'gw.yaml');
}
