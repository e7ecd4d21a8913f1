/**
 * CoAP over DTLS 1.2: PSK, and certificates (ECDHE-ECDSA) and ECDHE-PSK.
 *
 * In-process (CPU time, little affected by other load): handshakes per second (cookie exchange included)
 * and CoAP exchanges per second, client and server back to back; resident memory per idle session.
 *
 * Under load: a DTLS load generator against the whole gateway (CoAP engine, raw codec, null sink) and against
 * libcoap's coap-server-openssl — handshakes per second, then CON POSTs (20-byte payload, one in flight per
 * session) with 200 and 10,000 sessions, with each server's CPU time per operation and resident memory per
 * session. The load generator is bench/dtls-load.ts (cellgate's own DTLS client), or any program with the
 * same arguments and output named by DTLS_LOAD_COMMAND (e.g. a C one built on OpenSSL, to cross-check or to
 * drive a server harder than a Node client can).
 *
 * Certificates: ECDHE-ECDSA handshakes per second (X.509 client certificate, CCM_8) against the gateway and
 * against coap-server-openssl with a certificate (requiring client certificates), in the same run, the
 * ratio between them, and ECDHE-PSK handshakes per second against the gateway (libcoap's OpenSSL build has
 * no ECDHE-PSK CCM_8 suite). Resident memory per idle certificate session is measured in-process.
 *
 * Last, the floor: a bare Node UDP socket that only turns each CON into an ACK (bench/udp-ack-server.ts),
 * driven by NoSec clients, 200 and then 10,000 of them: how much slower many peers make any Node UDP server
 * on this machine (kernel and libuv), before CoAP or DTLS does any work.
 */
import { join } from 'node:path';
import type { BenchContext, Scenario } from '../lib/context.js';
import { coapLoad, spawnGateway, writeGatewayConfig } from '../lib/gateway.js';
import { KEY_HEX, load, loadCommand, type LoadCommand } from '../lib/dtls-load.js';
import { cpuSeconds, output, rssBytes, spawnPinned, stop, waitForCoap } from '../lib/proc.js';
import { TestPki } from '../../test/support/certificates.js';

const DEVICES = 12_000;

async function node(ctx: BenchContext, script: string, args: string[]): Promise<string> {
  const child = spawnPinned(0, process.execPath, ['--expose-gc', join(ctx.dist, 'bench', script), ...args]);
  return (await output(child)).trim();
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
  gen: LoadCommand,
  warmUp: boolean,
): Promise<void> {
  const seconds = ctx.quick ? 3 : 10;
  const runs = [
    { sessions: 10_000, parallel: 100, seconds: 0 },
    { sessions: 200, parallel: 50, seconds },
    { sessions: 10_000, parallel: 100, seconds },
  ];
  let handshakeCpu = 0;
  /** Rate and CPU per exchange by session count. */
  const bySessions = new Map<number, { rate: number; micros: number }>();
  for (const run of runs) {
    const server = await start(ctx, port);
    try {
      // A running Node server has its code compiled: 2,000 handshakes first (the same devices, whose
      // sessions the measured run replaces).
      if (warmUp) await load(gen, server.port, 2000, 100, 0);
      const rss0 = rssBytes(server.pid);
      const cpu0 = cpuSeconds(server.pid);
      const r = await load(gen, server.port, run.sessions, run.parallel, run.seconds);
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
        bySessions.set(run.sessions, { rate: r.exchangesPerSecond, micros });
      }
    } finally {
      await server.stop();
    }
  }
  const few = bySessions.get(200);
  const many = bySessions.get(10_000);
  if (few && many && few.rate > 0 && few.micros > 0) {
    ctx.log(
      `${name.padEnd(22)} 10000 vs 200 sessions: ${((1 - many.rate / few.rate) * 100).toFixed(0)} % lower rate, ` +
        `${((many.micros / few.micros - 1) * 100).toFixed(0)} % more server CPU per exchange`,
    );
  }
}

/** The bare UDP ACK server with 200 and with 10,000 clients, one CON in flight each. */
async function floor(ctx: BenchContext, port: number): Promise<void> {
  const seconds = ctx.quick ? 3 : 8;
  const rates = new Map<number, number>();
  for (const devices of [200, 10_000]) {
    const server = spawnPinned(0, process.execPath, [
      join(ctx.dist, 'bench', 'udp-ack-server.js'),
      String(port),
    ]);
    try {
      await waitForCoap(port);
      const r = await coapLoad(ctx, port, devices, ['--seconds', String(seconds), '--warmup', '1']);
      rates.set(devices, r.rate);
      ctx.log(
        `${'bare UDP ACK server'.padEnd(22)} ${String(devices).padStart(6)} clients   ${String(r.rate).padStart(6)} exchanges/s  p99 ${r.p99ms} ms  lost ${r.lost}`,
      );
      ctx.record(`dtls.floor.${devices}`, r);
    } finally {
      await stop(server);
    }
  }
  const few = rates.get(200) ?? 0;
  const many = rates.get(10_000) ?? 0;
  if (few > 0)
    ctx.log(
      `${'bare UDP ACK server'.padEnd(22)} 10000 vs 200 clients: ${((1 - many / few) * 100).toFixed(0)} % lower rate`,
    );
}

/**
 * ECDHE-ECDSA handshakes per second, the gateway against coap-server-openssl with a certificate, and
 * ECDHE-PSK handshakes per second against the gateway. Every session presents the same client certificate
 * (CN dev0, mapped by `cn`), so each gateway handshake also replaces the previous session of dev0.
 */
async function certificates(ctx: BenchContext, port: number, gen: LoadCommand): Promise<void> {
  const pki = new TestPki();
  const sessions = ctx.quick ? 1000 : 4000;
  const parallel = 50;
  try {
    const server = pki.server();
    const client = pki.device('dev0', 'dev0', { issuer: 'ca' });
    const ecdsa = ['ECDHE_ECDSA', client.certFile, client.keyFile];
    const rates = new Map<string, number>();
    const measure = async (name: string, s: Server, suite: string[], warmUp: boolean): Promise<void> => {
      if (warmUp) await load(gen, s.port, 500, parallel, 0, { suite });
      const cpu0 = cpuSeconds(s.pid);
      const r = await load(gen, s.port, sessions, parallel, 0, { suite });
      const cpu = cpuSeconds(s.pid) - cpu0;
      rates.set(name, r.handshakesPerSecond);
      ctx.log(
        `${name.padEnd(30)} ${String(r.handshakesPerSecond).padStart(6)} handshakes/s (${r.handshakesFailed} failed)  ` +
          `server CPU ${((cpu * 1e6) / sessions).toFixed(0)} us/handshake`,
      );
      ctx.record(`dtls.certificates.${name}`, { ...r, cpuMicros: (cpu * 1e6) / sessions });
    };
    const config = writeGatewayConfig(
      ctx,
      'dtls-certificates',
      port,
      sessions,
      { type: 'null' },
      {
        device: (i) => ({ psk: { identity: `dev${i}`, key: `hex:${KEY_HEX}` } }),
        sections: {
          coap: { bind: '127.0.0.1', port, nosec: true, dtlsPort: port + 1 },
          dtls: {
            maxHandshakes: sessions,
            maxHandshakesPerAddress: sessions,
            maxSessions: sessions,
            certificate: { certFile: server.certFile, keyFile: server.keyFile },
            trustAnchors: pki.caFile,
            clientIdentity: 'cn',
          },
        },
      },
    );
    const gw = spawnGateway(ctx, config);
    try {
      await waitForCoap(port);
      const s = { pid: gw.pid, port: port + 1, stop: () => stop(gw) };
      await measure('cellgate ECDHE-ECDSA', s, ecdsa, true);
      await measure('cellgate ECDHE-PSK', s, ['ECDHE_PSK'], true);
    } finally {
      await stop(gw);
    }
    const lc = spawnPinned(0, 'coap-server-openssl', [
      '-A',
      '127.0.0.1',
      '-p',
      String(port + 3),
      '-c',
      server.certFile,
      '-j',
      server.keyFile,
      '-C',
      pki.caFile,
      '-v',
      '0',
    ]);
    try {
      await waitForCoap(port + 3);
      await measure(
        'libcoap openssl ECDHE-ECDSA',
        { pid: lc.pid, port: port + 4, stop: () => stop(lc) },
        ecdsa,
        false,
      );
    } finally {
      await stop(lc);
    }
    const ours = rates.get('cellgate ECDHE-ECDSA') ?? 0;
    const theirs = rates.get('libcoap openssl ECDHE-ECDSA') ?? 0;
    if (theirs > 0) {
      ctx.log(`ECDHE-ECDSA handshakes/s, cellgate vs coap-server-openssl: ${(ours / theirs).toFixed(2)}x`);
      ctx.record('dtls.certificates.ratio', ours / theirs);
    }
  } finally {
    pki.close();
  }
}

export const dtls: Scenario = {
  name: 'dtls',
  description:
    'CoAP over DTLS 1.2: PSK in-process rates, idle-session memory (PSK and certificate), the gateway vs libcoap coap-server-openssl under load, ECDHE-ECDSA and ECDHE-PSK handshakes',
  async run(ctx) {
    const quick = ctx.quick;
    ctx.log(await node(ctx, 'dtls-handshakes.js', [quick ? '5000' : '20000', quick ? '50000' : '200000']));
    ctx.log(await node(ctx, 'dtls-sessions.js', [quick ? '10000' : '100000']));
    const gen = loadCommand(ctx);
    ctx.log(`load generator: ${gen.name} (set DTLS_LOAD_COMMAND to use another)`);
    await underLoad(ctx, 'cellgate (null sink)', cellgate, 47783, gen, true);
    await underLoad(ctx, 'libcoap openssl', libcoap, 47786, gen, false);
    ctx.log(await node(ctx, 'dtls-sessions.js', [quick ? '2000' : '10000', '6', 'rpk']));
    await certificates(ctx, 47792, gen);
    await floor(ctx, 47789);
  },
};
