/**
 * The fleet tests' private Redis Cluster: three masters on spare ports that share the slot space, reachable
 * with ioredis' cluster client, with hash-tagged keys in one slot for transactions; nothing left behind.
 */
import { existsSync } from 'node:fs';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { tcpReachable } from '../support/system.js';

describe('private Redis Cluster', () => {
  let cluster: RedisCluster;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = new Cluster(
      cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
      { redisOptions: { commandTimeout: 2000 } },
    );
  });
  afterAll(async () => {
    await client?.quit();
    await cluster?.stop();
  });

  it('runs three masters on distinct spare ports that cover all 16384 slots', async () => {
    expect(cluster.nodes).toHaveLength(3);
    const ports = cluster.nodes.flatMap((n) => [n.port, n.busPort]);
    expect(new Set(ports).size).toBe(6);
    expect(ports).not.toContain(6379);
    const info = await cluster.cli(['cluster', 'info'], cluster.nodes[2]);
    expect(info).toMatch(/cluster_state:ok/);
    expect(info).toMatch(/cluster_slots_assigned:16384/);
    expect(info).toMatch(/cluster_size:3/);
    const masters = (await cluster.cli(['cluster', 'nodes'])).split('\n').filter((l) => l.includes('master'));
    expect(masters).toHaveLength(3);
  });

  it('spreads keys over the masters and keeps hash-tagged keys together for transactions', async () => {
    for (let i = 0; i < 200; i++) await client.set(`fleet-test:key${i}`, String(i));
    const perNode = await Promise.all(
      cluster.nodes.map(async (n) => Number((await cluster.cli(['dbsize'], n)).trim())),
    );
    expect(perNode.reduce((a, b) => a + b)).toBe(200);
    for (const n of perNode) expect(n).toBeGreaterThan(20);
    expect(await client.get('fleet-test:key123')).toBe('123');
    // Keys with one hash tag share a slot: a MULTI over them works; over untagged keys it is refused.
    const ok = await client.multi().set('fleet-test:{dev1}:a', '1').incr('fleet-test:{dev1}:b').exec();
    expect(ok).toEqual([
      [null, 'OK'],
      [null, 1],
    ]);
    await expect(client.multi().set('fleet-test:a', '1').set('fleet-test:b', '2').exec()).rejects.toThrow(
      /CROSSSLOT|same slot/i,
    );
  });

  it('stops every node and removes its folder', async () => {
    const other = await startRedisCluster();
    const dir = /--dir (\S+)/.exec(other.nodes[0].proc.spawnargs.join(' '))![1];
    expect(existsSync(dir)).toBe(true);
    await other.stop();
    expect(existsSync(dir)).toBe(false);
    for (const n of other.nodes) {
      expect(n.proc.exitCode !== null || n.proc.signalCode !== null).toBe(true);
      expect(await tcpReachable(n.port)).toBe(false);
    }
  });
});
