/**
 * The `aws-iot` shadow source with the real AWS SDK against the wire-compatible IoT Data Plane test server
 * (SigV4 checked, real shadow documents, injected throttling): reads, updates, 409 version conflicts, the
 * service's throttling (retried by the SDK, then surfaced) and the gateway's own per-thing rate; then a whole
 * gateway delivering desired state from it and writing reported state back, also while it throttles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsIotShadowSource, type AwsIotShadowOptions } from '../../src/downlink/aws-iot-shadows.js';
import { rejection } from '../support/api-error.js';
import { jsonUplink } from '../support/downlink.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { FAULTS, IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';

const REGION = 'us-east-1';

function desired(d: Record<string, unknown>, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ state: { desired: d }, ...extra }));
}

describe('aws-iot shadow source against the IoT Data Plane test server', () => {
  let server: IotDataPlaneServer;
  const caps: string[] = [];
  const sources: AwsIotShadowSource[] = [];
  const source = (opts: Partial<AwsIotShadowOptions> = {}) => {
    const s = new AwsIotShadowSource({
      name: 'downlink',
      endpoint: server.url,
      region: REGION,
      maxRequestsPerSecondPerThing: 20,
      timeoutMs: 5000,
      maxAttempts: 3,
      maxThings: 100,
      onCap: (cap) => caps.push(cap),
      credentials: TEST_CREDENTIAL,
      ...opts,
    });
    sources.push(s);
    return s;
  };

  beforeAll(async () => {
    server = await IotDataPlaneServer.start({ region: REGION });
  });
  afterAll(async () => {
    for (const s of sources) await s.close();
    await server.close();
  });

  it('GetThingShadow: none is undefined, then the named shadow with its delta', async () => {
    const s = source();
    expect(await s.get('aws-1')).toBeUndefined();
    server.shadows.update('aws-1', 'downlink', desired({ interval: 60 }));
    server.shadows.update('aws-1', 'other', desired({ ignored: true }));
    expect(await s.get('aws-1')).toMatchObject({ version: 1, desired: { interval: 60 } });
  });

  it('UpdateThingShadow writes reported with version and clientToken; 409 ConflictException on a stale version', async () => {
    const s = source();
    server.shadows.update('aws-2', 'downlink', desired({ mode: 'eco' }));
    const ok = await s.update('aws-2', {
      state: { reported: { mode: 'eco' } },
      version: 1,
      clientToken: 'cellgate:1:d',
    });
    expect(ok).toMatchObject({ version: 2, clientToken: 'cellgate:1:d' });
    const e = await rejection(
      s.update('aws-2', { state: { reported: { mode: 'x' } }, version: 1, clientToken: 't' }),
    );
    expect([e.status, e.code, e.clientToken]).toEqual([409, 'ConflictException', 't']);
    const answer = server.shadows.get('aws-2', 'downlink').body as { state: Record<string, unknown> };
    expect(answer.state).toEqual({ desired: { mode: 'eco' }, reported: { mode: 'eco' } });
    expect(await s.delete('aws-2')).toMatchObject({ version: 2 });
    expect((await rejection(s.delete('aws-2'))).status).toBe(404);
  });

  it('the service throttles: the SDK retries; when it keeps throttling, a 429 ThrottlingException', async () => {
    const s = source();
    server.shadows.update('aws-3', 'downlink', desired({ a: 1 }));
    const before = server.stats.requests;
    server.inject(FAULTS.throttle, 1, 'shadow');
    expect(await s.get('aws-3')).toMatchObject({ desired: { a: 1 } });
    expect(server.stats.requests - before).toBe(2);
    server.inject(FAULTS.throttle, Infinity, 'shadow');
    try {
      const e = await rejection(s.get('aws-3'));
      expect([e.status, e.code]).toEqual([429, 'ThrottlingException']);
    } finally {
      server.clearFaults();
    }
  });

  it('holds itself to its per-thing rate: 429 without asking the service', async () => {
    const s = source({ maxRequestsPerSecondPerThing: 2 });
    await s.get('busy');
    await s.get('busy');
    const before = server.stats.requests;
    const e = await rejection(s.get('busy'));
    expect([e.status, e.code]).toEqual([429, 'ThrottlingException']);
    expect(server.stats.requests).toBe(before);
    expect(caps).toContain('downlink_shadow_rate');
    expect(await s.get('calm')).toBeUndefined();
  });

  it('a wrong key or an unreachable endpoint is an ApiError, not a crash', async () => {
    const wrong = source({
      credentials: { accessKeyId: TEST_CREDENTIAL.accessKeyId, secretAccessKey: 'nope' },
    });
    expect((await rejection(wrong.get('aws-1'))).status).toBe(403);
    const dead = source({ endpoint: 'http://127.0.0.1:1', timeoutMs: 500, maxAttempts: 1 });
    expect((await rejection(dead.get('t'))).status).toBeGreaterThanOrEqual(500);
  });

  describe('a gateway with the aws-iot source', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIAL.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIAL.secretAccessKey;
      gw = await startTestGateway({
        config: {
          downlink: {
            shadow: { source: 'aws-iot', aws: { endpoint: server.url, region: REGION, maxAttempts: 1 } },
            cache: { ttlMs: 300 },
          },
        },
      });
    });
    afterAll(() => gw.stop());

    const uplink = (...extra: string[]) => jsonUplink(gw.coapPort, 't?id=dev-1', extra);
    const metric = async (result: string) =>
      Number(
        new RegExp(`cellgate_downlink_source_operations_total\\{result="${result}"\\} (\\d+)`).exec(
          await (await fetch(`http://127.0.0.1:${gw.ports.http}/metrics`)).text(),
        )?.[1] ?? 0,
      );

    it('delivers desired state set in the shadow service and reports it when confirmed', async () => {
      expect((await uplink()).doc).toBeUndefined();
      const reads = server.stats.requests;
      // Within the cache TTL the gateway does not ask again.
      await uplink();
      expect(server.stats.requests).toBe(reads);
      server.shadows.update('thing-1', 'downlink', desired({ fan: 'on' }));
      await expect
        .poll(async () => (await uplink()).doc, { timeout: 3000 })
        .toEqual({ version: 1, desired: { fan: 'on' } });
      const { etag } = await uplink();
      expect((await uplink('-O', `4,${etag}`)).doc).toBeUndefined();
      await expect
        .poll(
          () =>
            (server.shadows.get('thing-1', 'downlink').body as { state: { reported?: unknown } }).state
              .reported,
        )
        .toEqual({ fan: 'on' });
      expect((server.shadows.get('thing-1', 'downlink').body as { version: number }).version).toBe(2);
    });

    it('while the service throttles, uplinks are answered from the cache and a confirmation is retried later', async () => {
      server.shadows.update('thing-1', 'downlink', desired({ fan: 'off' }));
      let offered: Awaited<ReturnType<typeof uplink>> = { doc: undefined, etag: undefined };
      await expect
        .poll(
          async () => {
            offered = await uplink();
            return offered.doc;
          },
          { timeout: 3000 },
        )
        .toEqual({ version: 3, desired: { fan: 'off' } });
      server.inject(FAULTS.throttle, Infinity, 'shadow');
      try {
        const failedBefore = await metric('read_failed');
        await new Promise((r) => setTimeout(r, 350)); // past the cache TTL
        expect((await uplink()).doc).toEqual({ version: 3, desired: { fan: 'off' } });
        await expect.poll(() => metric('read_failed')).toBeGreaterThan(failedBefore);
        // The confirmation cannot be written now: it fails, and the document is offered again.
        await uplink('-O', `4,${offered.etag}`);
        await expect.poll(() => metric('report_failed')).toBeGreaterThan(0);
      } finally {
        server.clearFaults();
      }
      await expect
        .poll(async () => (await uplink()).doc, { timeout: 3000 })
        .toEqual({ version: 3, desired: { fan: 'off' } });
      expect((await uplink('-O', `4,${offered.etag}`)).doc).toBeUndefined();
      await expect
        .poll(
          () =>
            (server.shadows.get('thing-1', 'downlink').body as { state: { reported?: unknown } }).state
              .reported,
        )
        .toEqual({ fan: 'off' });
    });
  });
});
