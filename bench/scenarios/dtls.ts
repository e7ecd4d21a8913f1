/**
 * CoAP over DTLS 1.2 PSK.
 *
 * In-process (CPU time, little affected by other load): handshakes per second (cookie exchange included)
 * and CoAP exchanges per second, client and server back to back; resident memory per idle session.
 *
 * Under load: the reference load generator dtlsload (C, OpenSSL) against the whole gateway (CoAP engine,
 * raw codec, null sink) and against libcoap's coap-server-openssl — handshakes per second, then CON POSTs
 * (20-byte payload, one in flight per session) with 200 and 10,000 sessions, with each server's CPU time
 * per operation and resident memory per session. dtlsload is compiled from DTLSLOAD_SRC, by default
 * ../shared/tools/dtlsload.c beside the repository (needs cc and libssl-dev); without it that part is skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BenchContext, Scenario } from '../lib/context.js';
import { spawnGateway, writeGatewayConfig } from '../lib/gateway.js';
import { cpuSeconds, output, rssBytes, spawnPinned, stop, waitForCoap } from '../lib/proc.js';

const KEY_HEX = '73656372657450534b'; // "secretPSK"
const DEVICES = 12_000;

async function node(ctx: BenchContext, script: string, args: string[]): Promise<string> {
  const child = spawnPinned(0, process.execPath, ['--expose-gc', join(ctx.dist, 'bench', script), ...args]);
  return (await output(child)).trim();
}

function dtlsload(ctx: BenchContext): string | undefined {
  const root = resolve(ctx.dist, '..');
  const src = resolve(root, process.env.DTLSLOAD_SRC ?? '../shared/tools/dtlsload.c');
  if (!existsSync(src)) return undefined;
  const bin = join(root, '.bench', 'dtlsload');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(join(root, '.bench'), { recursive: true });
    execFileSync('cc', ['-O2', '-o', bin, src, '-lssl', '-lcrypto']);
  }
  return bin;
}

interface Load {
  handshakesPerSecond: number;
  handshakesFailed: number;
  exchangesPerSecond: number;
  p99ms: number;
}

async function load(
  bin: string,
  port: number,
  sessions: number,
  parallel: number,
  seconds: number,
): Promise<Load> {
  const child = spawnPinned(1, bin, [
    '127.0.0.1',
    String(port),
    String(sessions),
    String(parallel),
    String(seconds),
    '20',
    't',
    'dev',
    KEY_HEX,
  ]);
  // dtlsload exits 1 when some handshakes failed; its figures are still printed.
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

interface Server {
  pid: number | undefined;
  port: number;
  stop(): Promise<void>;
}

async function cellgate(ctx: BenchContext, port: number): Promise<Server> {
  const config = writeGatewayConfig(
    ctx,
    'dtls',
    port,
    DEVICES,
    { type: 'null' },
    {
      device: (i) => ({ psk: { identity: `dev${i}`, key: `hex:${KEY_HEX}` } }),
      sections: {
        coap: { bind: '127.0.0.1', port, nosec: true, dtlsPort: port + 1 },
        dtls: { maxHandshakes: DEVICES, maxHandshakesPerAddress: DEVICES, maxSessions: DEVICES },
      },
    },
  );
  const child = spawnGateway(ctx, config);
  await waitForCoap(port);
  return { pid: child.pid, port: port + 1, stop: () => stop(child) };
}

async function libcoap(_ctx: BenchContext, port: number): Promise<Server> {
  const child = spawnPinned(0, 'coap-server-openssl', [
    '-A',
    '127.0.0.1',
    '-p',
    String(port),
    '-k',
    'secretPSK',
    '-v',
    '0',
  ]);
  await waitForCoap(port);
  return { pid: child.pid, port: port + 1, stop: () => stop(child) };
}

async function underLoad(
  ctx: BenchContext,
  name: string,
  start: (ctx: BenchContext, port: number) => Promise<Server>,
  port: number,
  bin: string,
  warmUp: boolean,
): Promise<void> {
  const seconds = ctx.quick ? 3 : 10;
  const runs = [
    { sessions: 10_000, parallel: 100, seconds: 0 },
    { sessions: 200, parallel: 50, seconds },
    { sessions: 10_000, parallel: 100, seconds },
  ];
  let handshakeCpu = 0;
  for (const run of runs) {
    const server = await start(ctx, port);
    try {
      // A running Node server has its code compiled: 2,000 handshakes first (the same devices, whose
      // sessions the measured run replaces).
      if (warmUp) await load(bin, server.port, 2000, 100, 0);
      const rss0 = rssBytes(server.pid);
      const cpu0 = cpuSeconds(server.pid);
      const r = await load(bin, server.port, run.sessions, run.parallel, run.seconds);
      const cpu = cpuSeconds(server.pid) - cpu0;
      const label = `${name.padEnd(22)} ${String(run.sessions).padStart(6)} sessions`;
      if (run.seconds === 0) {
        handshakeCpu = cpu / run.sessions;
        const perSession = (rssBytes(server.pid) - rss0) / run.sessions;
        ctx.log(
          `${label}  ${String(r.handshakesPerSecond).padStart(6)} handshakes/s (${r.handshakesFailed} failed)  ` +
            `server CPU ${((cpu * 1e6) / run.sessions).toFixed(0)} us/handshake  resident +${(perSession / 1024).toFixed(1)} KB/session`,
        );
        ctx.record(`dtls.${name}.handshakes`, {
          ...r,
          cpuMicros: (cpu * 1e6) / run.sessions,
          rssPerSession: perSession,
        });
      } else {
        const exchanges = r.exchangesPerSecond * run.seconds;
        const micros = exchanges ? ((cpu - handshakeCpu * run.sessions) * 1e6) / exchanges : 0;
        ctx.log(
          `${label}  ${String(r.exchangesPerSecond).padStart(6)} exchanges/s  p99 ${r.p99ms} ms  ` +
            `server CPU ${micros.toFixed(1)} us/exchange (handshakes subtracted)`,
        );
        ctx.record(`dtls.${name}.exchanges.${run.sessions}`, { ...r, cpuMicros: micros });
      }
    } finally {
      await server.stop();
    }
  }
}

export const dtls: Scenario = {
  name: 'dtls',
  description:
    'CoAP over DTLS 1.2 PSK: in-process rates, idle-session memory, the gateway vs libcoap coap-server-openssl under dtlsload',
  async run(ctx) {
    const quick = ctx.quick;
    ctx.log(await node(ctx, 'dtls-handshakes.js', [quick ? '5000' : '20000', quick ? '50000' : '200000']));
    ctx.log(await node(ctx, 'dtls-sessions.js', [quick ? '10000' : '100000']));
    const bin = dtlsload(ctx);
    if (!bin) {
      ctx.log('dtlsload not found (set DTLSLOAD_SRC to dtlsload.c): load runs skipped');
      return;
    }
    await underLoad(ctx, 'cellgate (null sink)', cellgate, 47783, bin, true);
    await underLoad(ctx, 'libcoap openssl', libcoap, 47786, bin, false);
  },
};
