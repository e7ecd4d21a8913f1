/**
 * The `aws-iot` shadow source with the real AWS SDK over HTTP with SigV4, against an IoT Data Plane shadow
 * endpoint: here another gateway's admin API, which speaks that wire shape (the AWS CLI test shows it).
 */
import { rejection } from '../support/api-error.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsIotShadowSource } from '../../src/downlink/aws-iot-shadows.js';

import { jsonUplink } from '../support/downlink.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

const CREDENTIALS = { accessKeyId: 'AKIDSHADOWTEST', secretAccessKey: 'shadow-test-secret' };

describe('aws-iot shadow source (AWS SDK, SigV4)', () => {
  let service: TestGateway;
  let endpoint: string;
  const caps: string[] = [];
  let source: AwsIotShadowSource;

  beforeAll(async () => {
    service = await startTestGateway({ config: { admin: { sigv4: CREDENTIALS } } });
    endpoint = `http://127.0.0.1:${service.ports.http}`;
    source = new AwsIotShadowSource({
      name: 'downlink',
      endpoint,
      region: 'eu-central-1',
      maxRequestsPerSecondPerThing: 3,
      timeoutMs: 2000,
      maxAttempts: 1,
      maxThings: 100,
      onCap: (cap) => caps.push(cap),
      credentials: CREDENTIALS,
    });
  });
  afterAll(async () => {
    await source.close();
    await service.stop();
  });

  it('GetThingShadow: none yet is undefined; UpdateThingShadow creates; 409 ConflictException on a stale version', async () => {
    expect(await source.get('aws-1')).toBeUndefined();
    const up = await source.update('aws-1', { state: { desired: { a: 1 } }, clientToken: 'tok' });
    expect(up).toMatchObject({ version: 1, clientToken: 'tok' });
    expect(await source.get('aws-1')).toMatchObject({ version: 1, desired: { a: 1 } });
    const e = await rejection(source.update('aws-2', { state: { desired: { a: 1 } }, version: 3 }));
    expect([e.status, e.code]).toEqual([409, 'ConflictException']);
    // (three requests per thing and second: the delete sequence uses another thing)
    await source.update('aws-3', { state: { desired: { a: 1 } } });
    expect(await source.delete('aws-3')).toMatchObject({ version: 1 });
    expect((await rejection(source.delete('aws-3'))).status).toBe(404);
  });

  it('holds itself to its per-thing rate: 429 ThrottlingException without asking AWS', async () => {
    const before = service.downlinks!.shadows;
    expect(before.kind).toBe('memory');
    await source.get('busy'); // the previous test's things have their own buckets
    await source.get('busy');
    await source.get('busy');
    const e = await rejection(source.get('busy'));
    expect([e.status, e.code]).toEqual([429, 'ThrottlingException']);
    expect(caps).toContain('downlink_shadow_rate');
    expect(await source.get('calm')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 400));
    expect(await source.get('busy')).toBeUndefined();
  });

  it('an unreachable endpoint is a ApiError, not a crash', async () => {
    const dead = new AwsIotShadowSource({
      name: 'downlink',
      endpoint: 'http://127.0.0.1:1',
      region: 'eu-central-1',
      maxRequestsPerSecondPerThing: 10,
      timeoutMs: 500,
      maxAttempts: 1,
      maxThings: 10,
      onCap: () => {},
      credentials: CREDENTIALS,
    });
    const e = await rejection(dead.get('t'));
    expect(e.status).toBeGreaterThanOrEqual(500);
    await dead.close();
  });

  describe('a gateway with the aws-iot source', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
      gw = await startTestGateway({
        config: {
          downlink: {
            shadow: { source: 'aws-iot', aws: { endpoint, region: 'eu-central-1' } },
            cache: { ttlMs: 300 },
          },
        },
      });
    });
    afterAll(() => gw.stop());

    const uplink = (...extra: string[]) => jsonUplink(gw.coapPort, 't?id=dev-1', extra);

    it('delivers desired state from the shadow service and writes reported when confirmed', async () => {
      expect((await uplink()).doc).toBeUndefined();
      const { version } = await service.downlinks!.updateShadow('thing-1', {
        state: { desired: { fan: 'on' } },
      });
      // Within the cache TTL the gateway does not ask again; after it, it does.
      await expect
        .poll(async () => (await uplink()).doc, { timeout: 3000 })
        .toEqual({ version, desired: { fan: 'on' } });
      const { etag } = await uplink();
      expect((await uplink('-O', `4,${etag}`)).doc).toBeUndefined();
      await expect
        .poll(async () => (await service.downlinks!.getShadow('thing-1'))?.reported)
        .toEqual({ fan: 'on' });
      expect((await service.downlinks!.getShadow('thing-1'))?.version).toBe(version + 1);
    });
  });
});
