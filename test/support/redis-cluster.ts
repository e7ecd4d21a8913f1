/**
 * A private three-node Redis Cluster for the tests: `redis-server --cluster-enabled yes` on spare ports, each
 * with its cluster state file in one temporary folder, joined with `redis-cli --cluster create … --cluster-replicas 0` (all
 * masters, the 16384 slots split between them). Every wait is bounded; `stop()` ends the servers and removes
 * the folders. Needs redis-server and redis-cli (Debian redis-server, redis-tools; see system.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { reap } from './reaper.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureCommands, freePort, tcpReachable } from './system.js';

const run = promisify(execFile);

export interface RedisClusterNode {
  host: string;
  port: number;
  /** The cluster bus port (node to node). */
  busPort: number;
  proc: ChildProcess;
}

export interface RedisCluster {
  nodes: RedisClusterNode[];
  /** `redis://host:port` of every node; any one of them is a seed for a cluster client. */
  urls: string[];
  /** Runs a redis-cli command against one node (default the first) and returns its output. */
  cli(args: string[], node?: RedisClusterNode): Promise<string>;
  /** Ends every node (SIGTERM, then SIGKILL after a bound) and removes the folders. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Masters (at least 3, what `redis-cli --cluster create` requires; default 3). */
  nodes?: number;
  /** Bound on the whole start, cluster creation included (default 20 s). */
  timeoutMs?: number;
}

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts one cluster-enabled server on spare ports; retries with new ports when one was taken meanwhile. */
async function startNode(dir: string, deadline: number): Promise<RedisClusterNode> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const busPort = await freePort();
    if (busPort === port) continue;
    const settings: Record<string, string | number> = {
      bind: HOST,
      port,
      'cluster-enabled': 'yes',
      'cluster-port': busPort,
      'cluster-config-file': `nodes-${port}.conf`,
      'cluster-node-timeout': 2000,
      dir,
      save: '',
      appendonly: 'no',
      daemonize: 'no',
      logfile: '',
    };
    const args = Object.entries(settings).flatMap(([k, v]) => [`--${k}`, String(v)]);
    const proc = reap(spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let log = '';
    proc.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    while (proc.exitCode === null && proc.signalCode === null && Date.now() < deadline) {
      if (await tcpReachable(port, HOST, 200)) return { host: HOST, port, busPort, proc };
      await sleep(50);
    }
    proc.kill('SIGKILL');
    if (attempt >= 3 || Date.now() >= deadline)
      throw new Error(`redis-server --cluster-enabled did not start on port ${port}: ${log}`);
  }
}

async function cli(args: string[], node: RedisClusterNode): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], {
    timeout: 10_000,
  });
  return stdout;
}

async function stopNode(node: RedisClusterNode): Promise<void> {
  if (node.proc.exitCode !== null || node.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => node.proc.once('exit', () => r()));
  node.proc.kill('SIGTERM');
  const timer = setTimeout(() => node.proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  ensureCommands([
    { command: 'redis-server', pkg: 'redis-server' },
    { command: 'redis-cli', pkg: 'redis-tools' },
  ]);
  const count = opts.nodes ?? 3;
  if (count < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-redis-cluster-'));
  const nodes: RedisClusterNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map(stopNode));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) nodes.push(await startNode(dir, deadline));
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `${n.host}:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: Math.max(1000, deadline - Date.now()) },
    );
    // Every node must know the whole slot map and agree the cluster is up before a client uses it.
    for (const node of nodes) {
      for (;;) {
        const info = await cli(['cluster', 'info'], node);
        if (
          /cluster_state:ok/.test(info) &&
          /cluster_slots_ok:16384/.test(info) &&
          new RegExp(`cluster_known_nodes:${count}\\b`).test(info)
        )
          break;
        if (Date.now() >= deadline) throw new Error(`Redis Cluster did not come up: ${info}`);
        await sleep(100);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    urls: nodes.map((n) => `redis://${n.host}:${n.port}`),
    cli: (args, node = nodes[0]) => cli(args, node),
    stop,
  };
}
