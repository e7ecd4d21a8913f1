/** Starts the gateway as a process pinned to core 0: null sink, the given devices, loopback ports. */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { BenchContext } from './context.js';
import { spawnPinned, stop, waitForCoap } from './proc.js';

export interface GatewayProcessOptions {
  /** Names its temporary folder. */
  name: string;
  devices: { id: string }[];
  coapPort: number;
  /** HTTP side port (0: any). */
  httpPort?: number;
}

export async function startGatewayProcess(
  ctx: BenchContext,
  opts: GatewayProcessOptions,
): Promise<ChildProcess> {
  const dir = ctx.tmp(opts.name);
  writeFileSync(join(dir, 'devices.yaml'), stringify(opts.devices));
  writeFileSync(
    join(dir, 'gw.yaml'),
    stringify({
      coap: { bind: '127.0.0.1', port: opts.coapPort, nosec: true },
      http: { bind: '127.0.0.1', port: opts.httpPort ?? 0 },
      devices: { file: 'devices.yaml', watch: false },
      publisher: { type: 'null' },
      log: { level: 'error' },
    }),
  );
  const server = spawnPinned(0, process.execPath, [
    join(ctx.dist, 'src/cli.js'),
    'start',
    '--config',
    join(dir, 'gw.yaml'),
  ]);
  try {
    await waitForCoap(opts.coapPort);
  } catch (err) {
    await stop(server);
    throw err;
  }
  return server;
}
