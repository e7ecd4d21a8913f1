/**
 * Runs a DTLS load generator against a server: bench/dtls-load.ts (cellgate's own DTLS client), or any
 * program with the same arguments and output named by DTLS_LOAD_COMMAND.
 */
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { output, spawnPinned } from './proc.js';

/** The PSK every benchmark device has ("secretPSK"). */
export const KEY_HEX = '73656372657450534b';

/** The load generator: a command and the arguments that come before the generator's own. */
export interface LoadCommand {
  command: string;
  args: string[];
  name: string;
}

export function loadCommand(ctx: BenchContext): LoadCommand {
  const external = process.env.DTLS_LOAD_COMMAND;
  if (external) return { command: external, args: [], name: external };
  return {
    command: process.execPath,
    args: [join(ctx.dist, 'bench', 'dtls-load.js')],
    name: 'bench/dtls-load',
  };
}

export interface Load {
  handshakesPerSecond: number;
  handshakesFailed: number;
  exchangesPerSecond: number;
  p99ms: number;
}

/**
 * SESSIONS sessions with identities dev0…, PARALLEL handshakes at a time, then SECONDS of CON POSTs (20 bytes)
 * one in flight per session. `suite`: the generator's SUITE and, for ECDHE_ECDSA, the client's certificate
 * and key files; `cid`: the sessions use Connection IDs (the project's own generator only).
 */
export async function load(
  gen: LoadCommand,
  port: number,
  sessions: number,
  parallel: number,
  seconds: number,
  opts: { cid?: boolean; suite?: readonly string[] } = {},
): Promise<Load> {
  const [suite, ...files] = opts.suite ?? [];
  const child = spawnPinned(1, gen.command, [
    ...gen.args,
    '127.0.0.1',
    String(port),
    String(sessions),
    String(parallel),
    String(seconds),
    '20',
    't',
    'dev',
    KEY_HEX,
    ...(suite !== undefined || opts.cid ? [suite ?? 'CCM_8'] : []),
    ...(opts.cid ? ['cid'] : []),
    ...files,
  ]);
  // The generator exits 1 when some handshakes failed; its figures are still printed.
  const out = await output(child).catch((err: Error) => err.message);
  const hs = /handshakes ok=(\d+) failed=(\d+) .* rate=(\d+)\/s/.exec(out);
  const ex = /done=\d+ rate=(\d+)\/s p50_ms=[\d.]+ p99_ms=([\d.]+)/.exec(out);
  return {
    handshakesPerSecond: hs ? Number(hs[3]) : 0,
    handshakesFailed: hs ? Number(hs[2]) : 0,
    exchangesPerSecond: ex ? Number(ex[1]) : 0,
    p99ms: ex ? Number(ex[2]) : 0,
  };
}
