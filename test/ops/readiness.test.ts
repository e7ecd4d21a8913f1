/** Readiness and the gateway-level metrics: draining, the publisher refusing work, build info, the UDP socket. */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NoSecListener } from '../../src/transport/nosec.js';
import type { Peer } from '../../src/transport/peer.js';
import { startTestGateway } from '../support/gateway.js';
import { uniquePrefix } from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

describe('readiness', () => {
  it('turns /readyz to 503 while draining, and says so in metrics, while still serving /metrics', async () => {
    const gw = await startTestGateway({
      config: { shutdown: { delayMs: 400, drainTimeoutMs: 500, deadlineMs: 2000 } },
    });
    try {
      const version = (
        JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
          version: string;
        }
      ).version;
      let m = await get(gw.ports.http, '/metrics');
      expect(m.text).toContain(`cellgate_build_info{version="${version}",node="${process.versions.node}"} 1`);
      expect(m.text).toMatch(/^cellgate_ready 1$/m);
      expect(m.text).toMatch(/^cellgate_draining 0$/m);
      const stopping = gw.shutdown('SIGTERM');
      const r = await get(gw.ports.http, '/readyz');
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text)).toEqual({ ready: false, reasons: ['draining'], store: { kind: 'memory' } });
      m = await get(gw.ports.http, '/metrics');
      expect(m.text).toMatch(/^cellgate_ready 0$/m);
      expect(m.text).toMatch(/^cellgate_draining 1$/m);
      expect((await get(gw.ports.http, '/healthz')).status).toBe(200);
      await expect(stopping).resolves.toMatchObject({ drained: true });
    } finally {
      await gw.stop();
    }
  });

  it('turns /readyz to 503 while the publisher refuses work (breaker open)', async () => {
    const gw = await startTestGateway();
    try {
      gw.recorder.failWithRetryAfter = 30;
      const r = await get(gw.ports.http, '/readyz');
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text)).toEqual({
        ready: false,
        reasons: ['publisher not accepting'],
        store: { kind: 'memory' },
      });
      gw.recorder.failWithRetryAfter = undefined;
      expect((await get(gw.ports.http, '/readyz')).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});

describe('NoSec socket', () => {
  it('ignores a datagram from source port 0 (no reply is possible) and survives socket errors, counting both', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const seen: Peer[] = [];
    const errors: Error[] = [];
    const listener = new NoSecListener(
      socket,
      { receive: (_d, peer) => seen.push(peer) },
      { maxPeers: 100, idleMs: 60_000, onCap: () => undefined, onSocketError: (e) => errors.push(e) },
    );
    const ping = Buffer.from([0x40, 0, 0, 1]);
    socket.emit('message', ping, { address: '127.0.0.1', port: 0, family: 'IPv4', size: 4 });
    expect(seen).toHaveLength(0);
    expect(listener.portZero).toBe(1);
    socket.emit('error', new Error('send ENOBUFS'));
    expect(listener.socketErrors).toBe(1);
    expect(errors.map((e) => e.message)).toEqual(['send ENOBUFS']);
    socket.emit('message', ping, { address: '127.0.0.1', port: 4000, family: 'IPv4', size: 4 });
    expect(seen.map((p) => p.port)).toEqual([4000]);
    await listener.close();
  });

  it('exposes the counts as metrics', async () => {
    const gw = await startTestGateway();
    try {
      const m = await get(gw.ports.http, '/metrics');
      expect(m.text).toContain('cellgate_udp_datagrams_ignored_total{reason="source_port_0"} 0');
      expect(m.text).toContain('cellgate_udp_socket_errors_total{listener="nosec"} 0');
      expect(m.text).toContain('cellgate_nosec_peers ');
    } finally {
      await gw.stop();
    }
  });
});

describe('readiness with the redis state store', () => {
  const key = randomBytes(32).toString('base64');
  const redisConfig = (port: number) => ({
    state: {
      store: 'redis',
      encryptionKeyFile: 'state.key',
      redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix('readyz'), commandTimeoutMs: 300 },
    },
  });

  it('waits for the store once, then reports it without taking the replica out when it goes away', async () => {
    const proxy = await startTcpProxy(6379);
    proxy.cut();
    const gw = await startTestGateway({ config: redisConfig(proxy.port), files: { '../state.key': key } });
    try {
      let r = await get(gw.ports.http, '/readyz');
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text)).toEqual({
        ready: false,
        reasons: ['state store not reached yet'],
        store: { kind: 'redis', cluster: false, reachable: false },
      });
      proxy.restore();
      await expect
        .poll(async () => (await get(gw.ports.http, '/readyz')).status, { timeout: 5000 })
        .toBe(200);
      r = await get(gw.ports.http, '/readyz');
      expect(JSON.parse(r.text)).toMatchObject({ ready: true, store: { kind: 'redis', reachable: true } });
      // Sessions held here keep working through an outage: the replica stays ready and says what is wrong.
      proxy.cut();
      await expect
        .poll(async () => JSON.parse((await get(gw.ports.http, '/readyz')).text) as unknown, {
          timeout: 5000,
        })
        .toMatchObject({ ready: true, reasons: [], store: { kind: 'redis', reachable: false } });
    } finally {
      await gw.stop();
      await proxy.close();
    }
  });
});
