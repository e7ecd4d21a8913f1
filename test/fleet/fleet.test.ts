/**
 * A fleet as operators run it: three gateway processes sharing state through Redis, behind a flow-hashing UDP
 * balancer (each new client port is a new flow, hashed onto the live replicas), and DTLS devices with
 * Connection IDs that come back from a new source port before every uplink, so nearly every uplink reaches a
 * replica that did not serve the previous one. Mid-run one replica is killed with SIGKILL and another is
 * replaced as a rolling update does (drained, SIGTERM, a new process). Every uplink must be acknowledged, each
 * device must handshake once for the whole run, every acknowledged uplink must be in the sink, and an uplink
 * published twice must carry the same messageId both times. Once on a standalone Redis, once on a three-node
 * Redis Cluster the test starts itself.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSimOptions } from '../../src/sim/options.js';
import { runSimulation } from '../../src/sim/simulate.js';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.js';
import { startRedisCluster } from '../support/redis-cluster.js';
import { dropPrefix, TEST_REDIS_URL, testRedis, uniquePrefix } from '../support/redis.js';
import { startUdpBalancer, type UdpBalancer } from '../support/udp-balancer.js';

const PSK = 'text:fleet-test-key';
const DEVICES = 20;
const UPLINKS = 8;
/** Uplinks per second over the whole fleet: the run lasts DEVICES × UPLINKS / RATE ≈ 10 s. */
const RATE = 16;
const KILL_AT_MS = 3000;
const REPLACE_AT_MS = 5500;
const RUN_BOUND_MS = 25_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Store {
  url: string;
  cluster: boolean;
  keyPrefix: string;
}

interface Replica {
  name: string;
  gw: ChildGateway;
  target: string;
  sink: string;
}

interface Published {
  messageId: string;
  deviceId: string;
  id: string;
  seq: number;
}

/** Reads every replica's file sink: one envelope per line, the simulator's JSON payload inside. */
function readSinks(files: string[]): Published[] {
  const out: Published[] = [];
  for (const f of files) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line) continue;
      const env = (JSON.parse(line) as { payload: { messageId: string; deviceId: string; raw: string } })
        .payload;
      const body = JSON.parse(Buffer.from(env.raw, 'base64').toString('utf8')) as { id: string; seq: number };
      out.push({ messageId: env.messageId, deviceId: env.deviceId, id: body.id, seq: body.seq });
    }
  }
  return out;
}

/** A sample's value in a Prometheus text exposition (0 when absent). */
function metric(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

class Fleet {
  readonly dir = mkdtempSync(join(tmpdir(), 'cellgate-fleet-'));
  readonly replicas: Replica[] = [];
  private next = 0;
  private readonly keyFile = join(this.dir, 'state.key');
  private readonly devices = Array.from({ length: DEVICES }, (_, i) => ({
    id: `fleet-${i + 1}`,
    psk: { identity: `fleet-${i + 1}`, key: PSK },
  }));

  private constructor(
    private readonly store: Store,
    readonly lb: UdpBalancer,
  ) {
    writeFileSync(this.keyFile, `0:${randomBytes(32).toString('base64')}\n`);
  }

  static async start(store: Store, replicas: number): Promise<Fleet> {
    const fleet = new Fleet(store, await startUdpBalancer({ idleMs: 30_000 }));
    await Promise.all(Array.from({ length: replicas }, () => fleet.startReplica()));
    return fleet;
  }

  /** Starts one more replica and adds it to the balancer once it listens. */
  async startReplica(): Promise<Replica> {
    const name = `replica-${this.next++}`;
    const sink = join(this.dir, `${name}.jsonl`);
    const gw = await startChildGateway({
      devices: this.devices,
      config: {
        state: {
          store: 'redis',
          redis: { url: this.store.url, keyPrefix: this.store.keyPrefix, cluster: this.store.cluster },
          encryptionKeyFile: this.keyFile,
        },
        publisher: { type: 'file', path: sink },
        // A rolling update: the balancer stops new flows first; the pod keeps serving those it has.
        shutdown: { delayMs: 1000, drainTimeoutMs: 2000, deadlineMs: 6000, retryAfterSeconds: 1 },
      },
    });
    const replica = { name, gw, sink, target: this.lb.addTarget({ port: gw.dtlsPort }) };
    this.replicas.push(replica);
    return replica;
  }

  /** kill -9, then the balancer notices the dead target (its flows go to the others). */
  async kill(r: Replica): Promise<void> {
    r.gw.proc.kill('SIGKILL');
    await r.gw.exited;
    await sleep(300);
    this.lb.removeTarget(r.target);
  }

  /** A rolling update's step: a new replica, the old one drained, SIGTERM, gone once it exits. */
  async replace(r: Replica): Promise<Replica> {
    const fresh = await this.startReplica();
    this.lb.drainTarget(r.target);
    r.gw.proc.kill('SIGTERM');
    const exit = await r.gw.exited;
    this.lb.removeTarget(r.target);
    expect(exit.code, `${r.name} drains and exits 0`).toBe(0);
    return fresh;
  }

  published(): Published[] {
    return readSinks(this.replicas.map((r) => r.sink));
  }

  async stop(): Promise<void> {
    await this.lb.close();
    await Promise.all(this.replicas.map((r) => r.gw.cleanup()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The run every store gets: rebinding devices, one replica killed, one replaced. */
async function rebindThroughKillAndRollout(store: Store): Promise<void> {
  const fleet = await Fleet.start(store, 3);
  try {
    const [a, b] = fleet.replicas;
    const opts = parseSimOptions(
      [
        ['--port', fleet.lb.port],
        ['--dtls', '--psk-key', PSK],
        ['--id-prefix', 'fleet-', '--devices', DEVICES, '--count', UPLINKS, '--rate', RATE],
        // Every uplink after the first comes from a new source port: a new flow, hashed afresh.
        ['--rebind', 1],
        ['--ack-timeout-ms', 500, '--response-timeout-ms', 5000, '--progress-ms', 0],
      ]
        .flat()
        .map(String),
    );
    // Bounded: an uplink that cannot get through ends as a failure the assertions below report.
    const run = runSimulation(opts, { signal: AbortSignal.timeout(RUN_BOUND_MS) });
    await sleep(KILL_AT_MS);
    await fleet.kill(a);
    await sleep(REPLACE_AT_MS - KILL_AT_MS);
    const fresh = await fleet.replace(b);
    const s = await run;

    // Every uplink acknowledged, with one handshake per device for the whole run.
    expect(s.failed).toEqual({});
    expect(s.acknowledged).toBe(DEVICES * UPLINKS);
    expect(s.rebinds).toBe(DEVICES * (UPLINKS - 1));
    expect(s.handshakes).toBe(DEVICES);

    // The disruptions hit devices: the killed, the replaced and the new replica all had flows.
    const flows = fleet.lb.flowsCreatedPerTarget();
    for (const r of [a, b, fresh]) expect(flows.get(r.target), `${r.name} served flows`).toBeGreaterThan(0);
    // Nearly every uplink came as a new flow. Not all of them: the kernel may hand a rebinding device a source
    // port that another device released a moment before, whose flow the balancer still remembers.
    expect(fleet.lb.stats.flows).toBeGreaterThanOrEqual(Math.floor(DEVICES * UPLINKS * 0.9));

    // The replicas that lived to the end took sessions over from the store, none refused for a replay.
    let takeovers = 0;
    for (const r of fleet.replicas.filter(
      (x) => x.gw.proc.exitCode === null && x.gw.proc.signalCode === null,
    )) {
      const text = await (await fetch(`http://127.0.0.1:${r.gw.httpPort}/metrics`)).text();
      takeovers += metric(text, 'cellgate_dtls_takeovers_total{outcome="ok"}');
      expect(metric(text, 'cellgate_dtls_takeovers_total{outcome="replay"}'), r.name).toBe(0);
    }
    expect(takeovers).toBeGreaterThan(DEVICES);

    // Nothing acknowledged is missing downstream; an uplink published twice has one messageId.
    const published = fleet.published();
    const ids = new Map<string, Set<string>>();
    for (const p of published) {
      expect(p.deviceId).toBe(p.id);
      const key = `${p.id}#${p.seq}`;
      ids.set(key, (ids.get(key) ?? new Set()).add(p.messageId));
    }
    for (let d = 1; d <= DEVICES; d++)
      for (let seq = 1; seq <= UPLINKS; seq++)
        expect(ids.get(`fleet-${d}#${seq}`)?.size, `fleet-${d} uplink ${seq}`).toBe(1);
    expect(ids.size).toBe(DEVICES * UPLINKS);
    expect(published.length).toBeGreaterThanOrEqual(DEVICES * UPLINKS);
  } finally {
    await fleet.stop();
  }
}

describe('a fleet of three replicas behind a flow-hashing balancer', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('on Redis: rebinding devices, a replica killed and one replaced, one handshake per device', async () => {
    const keyPrefix = uniquePrefix('fleet');
    const redis = testRedis(keyPrefix);
    cleanup.push(async () => {
      await dropPrefix(redis, keyPrefix);
      await redis.close();
    });
    await rebindThroughKillAndRollout({ url: TEST_REDIS_URL, cluster: false, keyPrefix });
  }, 60_000);

  it('on a three-node Redis Cluster: the same run', async () => {
    const cluster = await startRedisCluster();
    cleanup.push(() => cluster.stop());
    await rebindThroughKillAndRollout({ url: cluster.urls[0], cluster: true, keyPrefix: 'cellgate:' });
  }, 60_000);
});
