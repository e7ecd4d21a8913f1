/**
 * Two gateway replicas sharing the redis shadow source and command store: what one is told, the other
 * delivers; a confirmation on either clears it for both; changes reach the other replica's cache at once
 * (Redis pub/sub), long before its cache TTL.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/ops/logger.js';
import { jsonUplink } from '../support/downlink.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('replicas-e2e');

describe('replicas sharing Redis', () => {
  let a: TestGateway;
  let b: TestGateway;

  const uplink = (gw: TestGateway, ...extra: string[]) =>
    jsonUplink(gw.coapPort, 'telemetry?id=dev-1', extra);

  const admin = (gw: TestGateway, path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${gw.ports.http}${path}`, init);

  const logLines: { msg: string; level: string }[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          logLines.push(JSON.parse(line) as { msg: string; level: string });
        done();
      },
    });
    // Replica a still uses the deprecated downlink.redis keys; b the state section.
    a = await startTestGateway({
      config: {
        downlink: {
          shadow: { source: 'redis' },
          commands: { store: 'redis' },
          redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
          cache: { ttlMs: 60_000 },
        },
      },
      overrides: { log: createLogger('info', sink) },
    });
    b = await startTestGateway({
      config: {
        downlink: { shadow: { source: 'redis' }, commands: { store: 'redis' }, cache: { ttlMs: 60_000 } },
        state: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix } },
      },
    });
  });

  it('logs a deprecation warning for each downlink.redis key it still reads', () => {
    const warnings = logLines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings).toContain('downlink.redis.url is deprecated and read as state.redis.url: move it there');
    expect(warnings).toContain(
      'downlink.redis.keyPrefix is deprecated and read as state.redis.keyPrefix: move it there',
    );
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    const r = testRedis(prefix);
    await dropPrefix(r, prefix);
    await r.close();
  });

  it('desired state set on one replica is delivered by the other and confirmed on either', async () => {
    expect((await uplink(b)).doc).toBeUndefined(); // b caches "nothing pending" for a minute
    const set = await admin(a, '/things/thing-1/shadow?name=downlink', {
      method: 'POST',
      body: JSON.stringify({ state: { desired: { interval: 42 } } }),
    });
    const { version } = (await set.json()) as { version: number };
    // The change reaches b's cache through Redis pub/sub.
    await expect
      .poll(async () => (await uplink(b)).doc, { timeout: 3000 })
      .toEqual({ version, desired: { interval: 42 } });

    const id = (
      (await (
        await admin(a, '/things/thing-1/commands', { method: 'POST', body: JSON.stringify({ data: 'ping' }) })
      ).json()) as { id: number }
    ).id;
    let offered: Awaited<ReturnType<typeof uplink>> = { doc: undefined, etag: undefined };
    await expect
      .poll(
        async () => {
          offered = await uplink(b);
          return offered.doc?.commands;
        },
        { timeout: 3000 },
      )
      .toEqual([{ id, data: 'ping' }]);

    // The device's next uplink lands on the other replica, echoing what it applied.
    const after = await uplink(a, '-O', `4,${offered.etag}`);
    expect(after.doc).toBeUndefined();
    await expect.poll(async () => (await uplink(b)).doc, { timeout: 3000 }).toBeUndefined();
    const shadow = (await (await admin(b, '/things/thing-1/shadow?name=downlink')).json()) as {
      state: Record<string, unknown>;
    };
    expect(shadow.state).toEqual({ desired: { interval: 42 }, reported: { interval: 42 } });
    const cmds = (await (await admin(b, '/things/thing-1/commands')).json()) as {
      commands: { state: string }[];
    };
    expect(cmds.commands.map((c) => c.state)).toEqual(['delivered']);
  });
});
