/** Benchmark gateways: their config and device files, and the CoAP load run against them. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { BenchContext } from './context.js';
import type { ChildProcess } from 'node:child_process';
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

/**
 * Writes a gateway's config and device file (`dev0`…, each with `extra.device`'s fields, e.g. a codec, or
 * the fields it returns for device `i`, e.g. a PSK) into a fresh folder, with `extra.files` beside them and
 * `extra.sections` in the config; returns the config path.
 */
export function writeGatewayConfig(
  ctx: BenchContext,
  name: string,
  port: number,
  devices: number,
  publisher: Record<string, unknown>,
  extra: {
    device?: Record<string, unknown> | ((i: number) => Record<string, unknown>);
    files?: Record<string, string>;
    logLevel?: string;
    /** Config sections that replace the defaults above (e.g. `http`) or add to them (e.g. `downlink`). */
    sections?: Record<string, unknown>;
  } = {},
): string {
  const dir = ctx.tmp(name);
  for (const [file, text] of Object.entries(extra.files ?? {})) writeFileSync(join(dir, file), text);
  const fields = extra.device;
  writeFileSync(
    join(dir, 'devices.yaml'),
    stringify(
      Array.from({ length: devices }, (_, i) => ({
        id: `dev${i}`,
        ...(typeof fields === 'function' ? fields(i) : fields),
      })),
    ),
  );
  writeFileSync(
    join(dir, 'gw.yaml'),
    stringify({
      coap: { bind: '127.0.0.1', port, nosec: true },
      http: { bind: '127.0.0.1', port: 0 },
      devices: { file: 'devices.yaml', watch: false },
      publisher,
      log: { level: extra.logLevel ?? 'error' },
      ...extra.sections,
    }),
  );
  return join(dir, 'gw.yaml');
}

/** Starts the compiled gateway (`cellgate start --config …`) pinned to core 0. */
export function spawnGateway(ctx: BenchContext, config: string, env?: NodeJS.ProcessEnv): ChildProcess {
  return spawnPinned(0, process.execPath, [join(ctx.dist, 'src/cli.js'), 'start', '--config', config], {
    env,
  });
}
