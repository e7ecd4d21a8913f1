/**
 * A fleet of replicas sharing state through Redis (`state.store: redis`), measured against the memory store
 * in the same run:
 *
 * 1. exchanges per second with 200 DTLS sessions (Connection IDs) that never move, one gateway on the memory
 *    store and one on Redis, driven by the same load generator (bench/dtls-load.ts), alternately;
 * 2. the latency a moved session adds to its first exchange: devices handshake with replica A, then come back
 *    from a new port to replica B, which takes the session over from Redis; one exchange at a time, so the
 *    figures are latencies, not queueing. Measured twice: straight after an exchange on A (references: an
 *    exchange on a session a replica holds, on Redis and on the memory store), and after the devices slept
 *    past `downlink.cache.ttlMs`, as every device a balancer or a NAT moves has (reference: the same sleep,
 *    the session still held, half the devices each way, alternately);
 * 3. handshakes per device across a rolling restart of every replica: three replicas behind the test suite's
 *    flow-hashing balancer, simulated devices that rebind before every uplink, and each replica in turn
 *    replaced (a new one added, the old drained, SIGTERM);
 * 4. Redis bytes per idle session (MEMORY USAGE of every key the sessions left, over the session count, and
 *    the growth of Redis' used_memory), with what 1,000,000 sleeping devices would need.
 *
 * Needs Redis (127.0.0.1:6379, or CELLGATE_BENCH_REDIS_URL); keys go under a prefix of their own, removed at
 * the end.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { DtlsClientCore } from '../../src/dtls/client.js';
import { parseConfig } from '../../src/config/load.js';
import { parseSimOptions } from '../../src/sim/options.js';
import { runSimulation } from '../../src/sim/simulate.js';
import { startUdpBalancer } from '../../test/support/udp-balancer.js';
import { LatencyHistogram } from '../histogram.js';
import type { BenchContext, Scenario } from '../lib/context.js';
import { KEY_HEX, load, loadCommand } from '../lib/dtls-load.js';
import { spawnPinned, stop } from '../lib/proc.js';

const REDIS_URL = process.env.CELLGATE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEVICES = 6000;
/** Longer than the default `downlink.cache.ttlMs`: what a device that slept finds on every replica. */
const SLEEP_MS = parseConfig({}).downlink.cache.ttlMs + 500;

type StoreKind = 'memory' | 'redis';

interface Replica {
  child: ChildProcess;
  dtlsPort: number;
  httpPort: number;
}

/** One bench run's files and Redis prefix, and the replicas it starts. */
class Bench {
  readonly dir: string;
  /** As long as the default `cellgate:`, so the bytes per key are those of a deployment. */
  readonly prefix = `cgb${randomBytes(3).toString('hex')}:`;
  private readonly keyFile: string;
  private readonly started = new Set<Replica>();
  private n = 0;

  constructor(
    readonly ctx: BenchContext,
    readonly redis: Redis,
  ) {
    this.dir = ctx.tmp('fleet');
    this.keyFile = join(this.dir, 'state.key');
    writeFileSync(this.keyFile, `0:${randomBytes(32).toString('base64')}\n`);
    writeFileSync(
      join(this.dir, 'devices.yaml'),
      stringify(
        Array.from({ length: DEVICES }, (_, i) => ({
          id: `dev${i}`,
          psk: { identity: `dev${i}`, key: `hex:${KEY_HEX}` },
        })),
      ),
    );
  }

  /** Starts a gateway on `store` (null sink, DTLS only, ephemeral ports) pinned to `core`. */
  async replica(store: StoreKind, core = 0): Promise<Replica> {
    const config = join(this.dir, `replica-${this.n++}.yaml`);
    writeFileSync(
      config,
      stringify({
        coap: { bind: '127.0.0.1', port: 0, dtlsPort: 0, nosec: false },
        http: { bind: '127.0.0.1', port: 0 },
        devices: { file: 'devices.yaml', watch: false },
        publisher: { type: 'null' },
        log: { level: 'info' },
        dtls: { maxHandshakes: DEVICES, maxHandshakesPerAddress: DEVICES, maxSessions: DEVICES },
        shutdown: { delayMs: 1000, drainTimeoutMs: 2000, deadlineMs: 6000, retryAfterSeconds: 1 },
        ...(store === 'redis'
          ? {
              state: {
                store: 'redis',
                redis: { url: REDIS_URL, keyPrefix: this.prefix },
                encryptionKeyFile: this.keyFile,
              },
            }
          : {}),
      }),
    );
    const child = spawnPinned(core, process.execPath, [
      join(this.ctx.dist, 'src/cli.js'),
      'start',
      '--config',
      config,
    ]);
    const replica: Replica = { child, dtlsPort: 0, httpPort: 0 };
    this.started.add(replica);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    [replica.dtlsPort, replica.httpPort] = await new Promise<[number, number]>((resolve, reject) => {
      let pending = '';
      const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 15_000);
      child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${stderr}`)));
      child.stdout?.on('data', (d: Buffer) => {
        pending += d.toString();
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!line.includes('"cellgate listening"')) continue;
          clearTimeout(timer);
          const ready = JSON.parse(line) as { dtls: string; http: string };
          const port = (address: string) => Number(address.split(':').pop());
          resolve([port(ready.dtls), port(ready.http)]);
        }
      });
    });
    return replica;
  }

  async stop(r: Replica, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await stop(r.child, signal);
    this.started.delete(r);
  }

  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all([...this.started].map((r) => this.stop(r, signal)));
  }

  /** Every key the run left in Redis. */
  async keys(): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out;
  }

  async dropKeys(): Promise<void> {
    const keys = await this.keys();
    for (let i = 0; i < keys.length; i += 500) await this.redis.del(...keys.slice(i, i + 500));
  }

  async close(): Promise<void> {
    await this.stopAll('SIGKILL');
    await this.dropKeys();
  }
}

/** A device on its own UDP socket: DTLS with a Connection ID, one CoAP CON POST at a time. */
class Device {
  private socket!: Socket;
  private readonly core: DtlsClientCore;
  private mid = Math.floor(Math.random() * 65536);
  private waiting: ((code: number) => void) | undefined;

  constructor(
    id: string,
    private port: number,
  ) {
    this.core = new DtlsClientCore(
      { identity: id, key: Buffer.from(KEY_HEX, 'hex'), cid: Buffer.alloc(0), retransmitMs: 1000 },
      (d) => this.socket.send(d, this.port, '127.0.0.1'),
    );
    this.core.onData = (m) => {
      if (m.length >= 4 && ((m[2] << 8) | m[3]) === this.mid) this.waiting?.(m[1]);
    };
  }

  /** A new socket (a new source port, as after a NAT rebinding) towards `port`. */
  async bind(port: number): Promise<void> {
    this.socket?.close();
    this.port = port;
    this.socket = createSocket('udp4');
    this.socket.on('message', (m) => this.core.receive(m));
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
  }

  async connect(port: number): Promise<void> {
    await this.bind(port);
    await this.core.handshake();
  }

  /** One exchange; resolves with its latency in ms (a lost one is retried after 1 s and counted in full). */
  async exchange(): Promise<number> {
    this.mid = (this.mid + 1) & 0xffff;
    const request = Buffer.concat([
      Buffer.from([0x44, 0x02, this.mid >> 8, this.mid & 0xff, 1, 2, 3, 4, 0xb1, 0x74, 0xff]),
      Buffer.alloc(20, 0x61),
    ]);
    const t0 = performance.now();
    for (let attempt = 0; attempt < 5; attempt++) {
      const code = await new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 1000);
        this.waiting = (c) => {
          clearTimeout(timer);
          resolve(c);
        };
        this.core.write(request);
      });
      this.waiting = undefined;
      if (code !== undefined) {
        if (code >> 5 !== 2) throw new Error(`exchange answered ${code >> 5}.${code & 31}`);
        return performance.now() - t0;
      }
    }
    throw new Error('exchange not answered');
  }

  close(): void {
    this.core.stop('closed');
    this.socket?.close();
  }
}

const ms = (v: number) => `${v.toFixed(3)} ms`;

/** 1. Exchanges per second with 200 sessions that stay where they are: memory store vs Redis. */
async function steadyRate(b: Bench): Promise<void> {
  const gen = loadCommand(b.ctx);
  const seconds = b.ctx.quick ? 3 : 10;
  const rounds = b.ctx.quick ? 1 : 2;
  const best: Record<StoreKind, number> = { memory: 0, redis: 0 };
  for (let round = 0; round < rounds; round++) {
    for (const store of ['memory', 'redis'] as const) {
      const r = await b.replica(store);
      try {
        // A compiled server first: a short run whose sessions the measured one replaces.
        await load(gen, r.dtlsPort, 200, 50, 1, { cid: true });
        const m = await load(gen, r.dtlsPort, 200, 50, seconds, { cid: true });
        b.ctx.log(
          `200 sessions that never move, ${store.padEnd(6)} store: ${String(m.exchangesPerSecond).padStart(6)} exchanges/s  p99 ${m.p99ms} ms`,
        );
        best[store] = Math.max(best[store], m.exchangesPerSecond);
      } finally {
        await b.stop(r);
        await b.dropKeys();
      }
    }
  }
  const ratio = best.memory > 0 ? best.redis / best.memory : 0;
  b.ctx.log(
    `  → Redis store at ${(ratio * 100).toFixed(1)} % of the memory store's rate (best of ${rounds}; target ≥ 90 %)`,
  );
  b.ctx.record('fleet.steady', { ...best, ratio });
}

function quantiles(h: LatencyHistogram): { p50: number; p99: number } {
  return { p50: h.quantile(0.5), p99: h.quantile(0.99) };
}

/**
 * 2. The latency a move adds to a session's first exchange on its new replica. Each session moves once, to
 * the next of three replicas, as a device does after a sleep (moving straight back, before the replica it
 * left has heard of the move, is not what devices do).
 */
async function moveLatency(b: Bench): Promise<void> {
  const n = b.ctx.quick ? 150 : 600;
  const memory = await b.replica('memory');
  const held = { memory: new LatencyHistogram(), redis: new LatencyHistogram() };
  /** A session that stays on its replica while its device comes back from a new port (RFC 9146 §6). */
  const rebound = new LatencyHistogram();
  const moved = new LatencyHistogram();
  /** After a sleep past the downlink cache's lifetime: sessions held where they were, and moved. */
  const asleep = { held: new LatencyHistogram(), moved: new LatencyHistogram() };
  try {
    for (let i = 0; i < n; i++) {
      const d = new Device(`dev${i}`, memory.dtlsPort);
      await d.connect(memory.dtlsPort);
      await d.exchange();
      held.memory.record(await d.exchange());
      await d.bind(memory.dtlsPort);
      rebound.record(await d.exchange());
      d.close();
    }
  } finally {
    await b.stop(memory);
  }
  const replicas: Replica[] = [];
  for (let k = 0; k < 3; k++) replicas.push(await b.replica('redis'));
  const ports = replicas.map((x) => x.dtlsPort);
  let claim = { sum: 0, count: 0 };
  try {
    // The first sessions warm every replica's take-over path up (compiled code, Redis scripts loaded).
    const warm = Math.min(60, n);
    for (let i = 0; i < n + warm; i++) {
      const d = new Device(`dev${i}`, ports[i % 3]);
      await d.connect(ports[i % 3]);
      await d.exchange();
      const h = await d.exchange();
      // Back from a new port, at another replica: it takes the session over from Redis.
      await d.bind(ports[(i + 1) % 3]);
      const m = await d.exchange();
      if (i >= warm) {
        held.redis.record(h);
        moved.record(m);
      }
      d.close();
    }
    // After a sleep: the downlink cache entries the exchanges above left are stale on every replica. As
    // many held as moved sessions as above, so both tails rest on as many samples.
    const batch = b.ctx.quick ? 50 : 200;
    const last = warm + 2 * n;
    for (let first = warm; first < last; first += batch) {
      const ds: Device[] = [];
      for (let i = first; i < Math.min(first + batch, last); i++) {
        const d = new Device(`dev${i}`, ports[i % 3]);
        await d.connect(ports[i % 3]);
        await d.exchange();
        ds.push(d);
      }
      await new Promise((r) => setTimeout(r, SLEEP_MS));
      for (let k = 0; k < ds.length; k++) {
        const i = first + k;
        const d = ds[k];
        if (i % 2 === 0) asleep.held.record(await d.exchange());
        else {
          await d.bind(ports[(i + 1) % 3]);
          asleep.moved.record(await d.exchange());
        }
        d.close();
      }
    }
    // The store's side of it, as the replicas measured it (warm-up included).
    for (const x of replicas) {
      const text = await (await fetch(`http://127.0.0.1:${x.httpPort}/metrics`)).text();
      const sample = (name: string) =>
        Number(new RegExp(`^${name}\\{op="claim"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      claim = {
        sum: claim.sum + sample('cellgate_state_store_seconds_sum'),
        count: claim.count + sample('cellgate_state_store_seconds_count'),
      };
    }
  } finally {
    await b.stopAll();
    await b.dropKeys();
  }
  // What one store round trip costs from here (a move needs one): the floor of what a move can add.
  const ping = new LatencyHistogram();
  /** The same from a process that was idle for 5 ms, as a replica is when a moved device's record arrives. */
  const idlePing = new LatencyHistogram();
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    await b.redis.ping();
    ping.record(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
    t0 = performance.now();
    await b.redis.ping();
    idlePing.record(performance.now() - t0);
  }
  const p = quantiles(ping);
  const ip = quantiles(idlePing);
  const m = quantiles(held.memory);
  const nb = quantiles(rebound);
  const r = quantiles(held.redis);
  const mv = quantiles(moved);
  b.ctx.log(`first exchange after a move (${n} sessions, one exchange at a time):`);
  b.ctx.log(`  session held, memory store   p50 ${ms(m.p50)}  p99 ${ms(m.p99)}`);
  b.ctx.log(`  held, device on a new port   p50 ${ms(nb.p50)}  p99 ${ms(nb.p99)} (memory store)`);
  b.ctx.log(`  session held, Redis store    p50 ${ms(r.p50)}  p99 ${ms(r.p99)}`);
  b.ctx.log(`  session moved (taken over)   p50 ${ms(mv.p50)}  p99 ${ms(mv.p99)}`);
  b.ctx.log(`  Redis PING from this process p50 ${ms(p.p50)}  p99 ${ms(p.p99)} (one store round trip)`);
  b.ctx.log(`  the same after 5 ms idle     p50 ${ms(ip.p50)}  p99 ${ms(ip.p99)} (waking the process up)`);
  const claimMean = claim.count ? (claim.sum / claim.count) * 1000 : 0;
  b.ctx.log(`  the replicas' claim calls    mean ${ms(claimMean)} over ${claim.count} take-overs`);
  b.ctx.log(
    `  → a move adds p50 ${ms(mv.p50 - r.p50)}  p99 ${ms(mv.p99 - r.p99)} (against the memory store: p50 ` +
      `${ms(mv.p50 - m.p50)}  p99 ${ms(mv.p99 - m.p99)}; target ≤ 1 ms at p99)`,
  );
  const ah = quantiles(asleep.held);
  const am = quantiles(asleep.moved);
  b.ctx.log(
    `after a sleep past downlink.cache.ttlMs (${SLEEP_MS} ms; ${asleep.held.total} held, ${asleep.moved.total} moved):`,
  );
  b.ctx.log(`  session held, Redis store    p50 ${ms(ah.p50)}  p99 ${ms(ah.p99)}`);
  b.ctx.log(`  session moved (taken over)   p50 ${ms(am.p50)}  p99 ${ms(am.p99)}`);
  b.ctx.log(`  → a move adds p50 ${ms(am.p50 - ah.p50)}  p99 ${ms(am.p99 - ah.p99)} (target ≤ 1 ms at p99)`);
  b.ctx.record('fleet.move', {
    sessions: n,
    heldMemory: m,
    heldMemoryNewPort: nb,
    heldRedis: r,
    moved: mv,
    redisPing: p,
    redisPingAfterIdle: ip,
    claimMeanMs: claimMean,
    afterSleep: { sleepMs: SLEEP_MS, held: ah, moved: am },
  });
}

/** 3. Handshakes per device while every replica is replaced in turn. */
async function rollingRestart(b: Bench): Promise<void> {
  const devices = b.ctx.quick ? 40 : 100;
  const count = b.ctx.quick ? 12 : 20;
  const rate = devices;
  const lb = await startUdpBalancer({ idleMs: 30_000 });
  const live = new Map<string, Replica>();
  const add = async () => {
    const r = await b.replica('redis');
    live.set(lb.addTarget({ port: r.dtlsPort }), r);
  };
  try {
    await Promise.all([add(), add(), add()]);
    const opts = parseSimOptions(
      [
        ['--port', lb.port, '--dtls', '--psk-key', `hex:${KEY_HEX}`],
        ['--id-prefix', 'dev', '--first', 0, '--devices', devices, '--count', count, '--rate', rate],
        ['--rebind', 1, '--ack-timeout-ms', 1000, '--progress-ms', 0],
      ]
        .flat()
        .map(String),
    );
    const run = runSimulation(opts);
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = performance.now();
    for (const [target, old] of [...live]) {
      await add();
      lb.drainTarget(target);
      await b.stop(old);
      lb.removeTarget(target);
      live.delete(target);
    }
    const rollSeconds = (performance.now() - t0) / 1000;
    const s = await run;
    const failed = Object.values(s.failed).reduce((x, y) => x + y, 0);
    b.ctx.log(
      `rolling restart of 3 replicas (${rollSeconds.toFixed(1)} s) under ${devices} devices rebinding before every uplink:`,
    );
    b.ctx.log(
      `  ${(s.handshakes / devices).toFixed(2)} handshakes per device (target 1.0); ${s.acknowledged}/${s.uplinks} uplinks ` +
        `acknowledged, ${failed} failed, ${s.retransmissions} retransmissions, p99 ` +
        (s.latencyMs ? ms(s.latencyMs.p99) : 'n/a'),
    );
    b.ctx.record('fleet.rollingRestart', {
      devices,
      handshakesPerDevice: s.handshakes / devices,
      acknowledged: s.acknowledged,
      uplinks: s.uplinks,
      failed: s.failed,
      p99ms: s.latencyMs?.p99 ?? null,
    });
  } finally {
    await lb.close();
    for (const r of live.values()) await b.stop(r);
    await b.dropKeys();
  }
}

/** 4. What an idle session costs in Redis (the memory store keeps it in the replica alone: no Redis at all). */
async function idleSessionBytes(b: Bench): Promise<void> {
  const sessions = b.ctx.quick ? 1000 : 5000;
  const r = await b.replica('redis');
  const measured = await (async () => {
    try {
      const used0 = usedMemory(await b.redis.info('memory'));
      const hs = await load(loadCommand(b.ctx), r.dtlsPort, sessions, 100, 0, { cid: true });
      if (hs.handshakesFailed > 0) b.ctx.log(`  (${hs.handshakesFailed} handshakes failed)`);
      await new Promise((res) => setTimeout(res, 500));
      const used = usedMemory(await b.redis.info('memory')) - used0;
      const keys = await b.keys();
      const pipeline = b.redis.pipeline();
      for (const k of keys) pipeline.memory('USAGE', k, 'SAMPLES', 0);
      let bytes = 0;
      for (const [err, n] of (await pipeline.exec()) ?? []) if (!err) bytes += Number(n);
      return { bytes, keys: keys.length, used };
    } finally {
      await b.stop(r);
      await b.dropKeys();
    }
  })();
  const perSession = measured.bytes / sessions;
  const usedPerSession = measured.used / sessions;
  const mib = (perDevice: number) => ((perDevice * 1e6) / 2 ** 20).toFixed(0);
  b.ctx.log(`idle sessions (${sessions}, Connection IDs, key prefix of 10 characters):`);
  b.ctx.log(
    `  Redis: ${perSession.toFixed(0)} B per session by MEMORY USAGE (${(measured.keys / sessions).toFixed(2)} keys ` +
      `per session; target ≤ 512 B); used_memory grew ${usedPerSession.toFixed(0)} B per session`,
  );
  b.ctx.log(
    `  → 1,000,000 sleeping devices: ${mib(perSession)} MiB by MEMORY USAGE, ${mib(usedPerSession)} MiB by used_memory ` +
      `(before replicas and fail-over headroom)`,
  );
  b.ctx.record('fleet.idle', {
    sessions,
    redisBytesPerSession: perSession,
    usedMemoryPerSession: usedPerSession,
    keysPerSession: measured.keys / sessions,
  });
}

function usedMemory(info: string): number {
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

export const fleet: Scenario = {
  name: 'fleet',
  description:
    'replicas sharing state through Redis vs the memory store: steady rate, move latency, a rolling restart, Redis bytes per session',
  async run(ctx) {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 5000 });
    try {
      await redis.connect();
    } catch (err) {
      throw new Error(
        `the fleet benchmark needs Redis at ${REDIS_URL} (apt-get install redis-server, or set CELLGATE_BENCH_REDIS_URL): ${(err as Error).message}`,
        { cause: err },
      );
    }
    const b = new Bench(ctx, redis);
    try {
      await steadyRate(b);
      await moveLatency(b);
      await rollingRestart(b);
      await idleSessionBytes(b);
    } finally {
      await b.close();
      redis.disconnect();
    }
  },
};
