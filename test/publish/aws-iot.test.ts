/** The aws-iot publisher against the test IoT Data Plane server (SigV4-checked), next to the real SDK. */
import { readFileSync } from 'node:fs';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { AwsIotSink, endpointUrl } from '../../src/publish/aws-iot.js';
import { Delivery } from '../../src/publish/delivery.js';
import { createPublisher } from '../../src/publish/index.js';
import { publishPath, regionOfEndpoint } from '../../src/publish/iot-wire.js';
import type { Publisher } from '../../src/publish/publisher.js';
import { FAULTS, IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';
import { makePki, removePki } from '../support/mosquitto.js';
import { delivery, deps, message, metricValue, publish, sleep } from './helpers.js';

// The publisher takes credentials from the SDK's default provider chain: here, the environment.
process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIAL.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIAL.secretAccessKey;
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;

let server: IotDataPlaneServer;
const open: Publisher[] = [];

async function publisher(over: Record<string, unknown> = {}, d = deps()) {
  const config = parseConfig({
    publisher: {
      type: 'aws-iot',
      endpoint: server.url,
      region: 'us-east-1',
      requestTimeoutMs: 300,
      deadlineMs: 3000,
      retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
      ...over,
    },
  });
  const p = await createPublisher(config.publisher, d);
  open.push(p);
  return p;
}

beforeAll(async () => {
  server = await IotDataPlaneServer.start();
});

afterAll(async () => {
  await Promise.all(open.map((p) => p.close()));
  await server.close();
});

beforeEach(() => server.clearFaults());

describe('aws-iot publisher', () => {
  it('publishes what the SDK would: topic, payload, QoS, content type and user properties', async () => {
    const p = await publisher();
    const topic = "cellgate/thing:1/a b/ü/(x)*!/'q'";
    const msg = message('msg-1', topic, 'dev "1"');
    expect(await publish(p, msg)).toBeNull();
    const ours = server.publishes.at(-1)!;

    const client = new IoTDataPlaneClient({ region: 'us-east-1', endpoint: server.url });
    await client.send(
      new PublishCommand({
        topic,
        qos: 1,
        payload: msg.body,
        contentType: 'application/json',
        payloadFormatIndicator: 'UTF8_DATA',
        userProperties: JSON.stringify([{ messageId: 'msg-1' }, { deviceId: 'dev "1"' }]),
      }),
    );
    client.destroy();
    const theirs = server.publishes.at(-1)!;

    for (const p of [ours, theirs]) {
      expect(p.topic).toBe(topic);
      expect(JSON.parse(p.payload.toString())).toEqual(msg.envelope);
    }
    const strip = ({ receivedAt: _r, payload: _p, ...rest }: typeof ours) => rest;
    expect(strip(ours)).toEqual(strip(theirs));
    expect(ours).toMatchObject({
      qos: 1,
      contentType: 'application/json',
      payloadFormatIndicator: 'UTF8_DATA',
      userProperties: [
        ['messageId', 'msg-1'],
        ['deviceId', 'dev "1"'],
      ],
    });
  });

  it('publishes at QoS 0 when configured', async () => {
    const p = await publisher({ qos: 0 });
    expect(await publish(p, message('q0'))).toBeNull();
    expect(server.publishes.at(-1)).toMatchObject({ qos: 0 });
  });

  it('is refused with a wrong secret, and does not retry', async () => {
    const wrong = await IotDataPlaneServer.start({
      credentials: [{ accessKeyId: TEST_CREDENTIAL.accessKeyId, secretAccessKey: 'another-secret' }],
    });
    try {
      const config = parseConfig({
        publisher: { type: 'aws-iot', endpoint: wrong.url, region: 'us-east-1' },
      });
      const p = await createPublisher(config.publisher, deps());
      const err = await publish(p, message('m'));
      expect(err?.message).toMatch(/auth: HTTP 403 InvalidSignatureException/);
      expect(wrong.stats).toMatchObject({ requests: 1, rejectedSignatures: 1, publishes: 0 });
      await p.close();
    } finally {
      await wrong.close();
    }
  });

  it('signs with temporary credentials (session token), as IRSA and Pod Identity hand out', async () => {
    const temp = {
      accessKeyId: 'ASIATEMPORARY',
      secretAccessKey: 'temp-secret',
      sessionToken: 'token/with+chars=',
    };
    const tempServer = await IotDataPlaneServer.start({ credentials: [temp] });
    try {
      const log = deps().log;
      const sink = await AwsIotSink.create(
        { endpoint: new URL(tempServer.url), region: 'us-east-1', qos: 1, connections: 2, credentials: temp },
        log,
      );
      const d = new Delivery(sink, delivery(), deps());
      expect(await publish(d, message('temp'))).toBeNull();
      expect(tempServer.publishes[0]).toMatchObject({ accessKeyId: 'ASIATEMPORARY' });
      await d.close();
    } finally {
      await tempServer.close();
    }
  });

  it('publishes over HTTPS', async () => {
    const pki = makePki();
    const tlsServer = await IotDataPlaneServer.start({
      tls: { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) },
    });
    try {
      const sink = await AwsIotSink.create(
        {
          endpoint: new URL(tlsServer.url),
          region: 'us-east-1',
          qos: 1,
          connections: 2,
          ca: readFileSync(pki.ca),
        },
        deps().log,
      );
      const d = new Delivery(sink, delivery(), deps());
      expect(tlsServer.url).toMatch(/^https:/);
      expect(await publish(d, message('over-tls'))).toBeNull();
      expect(tlsServer.publishes[0].userProperties).toContainEqual(['messageId', 'over-tls']);
      await d.close();
    } finally {
      await tlsServer.close();
      removePki(pki);
    }
  });

  it('retries 429 throttling and 5xx answers, then succeeds', async () => {
    const d = deps();
    const p = await publisher({}, d);
    server.inject(FAULTS.throttle, 2, 'publish');
    server.inject(FAULTS.internal, 1, 'publish');
    const before = server.stats.publishes;
    expect(await publish(p, message('retry-me'))).toBeNull();
    expect(server.stats.publishes).toBe(before + 1);
    expect(await metricValue(d.metrics, 'cellgate_publish_retries_total')).toBe(3);
    expect(
      await metricValue(d.metrics, 'cellgate_publish_attempt_failures_total', { kind: 'throttled' }),
    ).toBe(2);
    expect(await metricValue(d.metrics, 'cellgate_publish_attempt_failures_total', { kind: 'server' })).toBe(
      1,
    );
  });

  it('aborts an attempt that gets no answer and retries it', async () => {
    const d = deps();
    const p = await publisher({ requestTimeoutMs: 150 }, d);
    server.inject(FAULTS.hang, 1, 'publish');
    const t0 = performance.now();
    expect(await publish(p, message('hung-once'))).toBeNull();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(await metricValue(d.metrics, 'cellgate_publish_attempt_failures_total', { kind: 'timeout' })).toBe(
      1,
    );
  });

  it('gives up at the deadline when the endpoint never answers', async () => {
    const p = await publisher({ requestTimeoutMs: 100, deadlineMs: 400 });
    server.inject(FAULTS.hang, Infinity, 'publish');
    const t0 = performance.now();
    const err = await publish(p, message('never'));
    const took = performance.now() - t0;
    expect(err?.message).toMatch(/timeout/);
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(1500);
  });

  it('opens the breaker on sustained 503s (immediate 5.03) and closes it when the endpoint recovers', async () => {
    const d = deps();
    const p = await publisher(
      {
        retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
        breaker: { failureThreshold: 4, openMs: 300, maxOpenMs: 2000 },
      },
      d,
    );
    server.inject(FAULTS.unavailable, Infinity, 'publish');
    const errs = await Promise.all([1, 2].map((i) => publish(p, message(`down-${i}`))));
    expect(errs.every((e) => e !== null)).toBe(true);
    expect(p.ready()).toBe(false);
    const requests = server.stats.requests;
    const t0 = performance.now();
    const fast = await publish(p, message('refused'));
    expect(performance.now() - t0).toBeLessThan(20);
    expect(fast?.message).toMatch(/circuit breaker open/);
    expect(fast?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(server.stats.requests).toBe(requests); // answered without touching the endpoint

    server.clearFaults();
    await sleep(320);
    expect(await publish(p, message('probe'))).toBeNull();
    expect(p.ready()).toBe(true);
    expect(await metricValue(d.metrics, 'cellgate_publish_breaker_state')).toBe(0);
    expect(await metricValue(d.metrics, 'cellgate_publish_breaker_opened_total')).toBe(1);
  });

  it('corrects its signing clock when the endpoint says the signature expired', async () => {
    server.clockOffsetMs = 2 * 3600_000;
    try {
      const p = await publisher();
      expect(await publish(p, message('skewed'))).toBeNull();
      expect(await publish(p, message('skewed-2'))).toBeNull();
    } finally {
      server.clockOffsetMs = 0;
    }
  });

  it('refuses a payload over 128 KB without sending it', async () => {
    const p = await publisher();
    const msg = message('huge');
    msg.body = Buffer.alloc(128 * 1024 + 10, 0x20);
    const requests = server.stats.requests;
    expect((await publish(p, msg))?.message).toMatch(/over the 131072-byte limit/);
    expect(server.stats.requests).toBe(requests);
  });

  it('carries a burst with bounded concurrency and connections', async () => {
    const d = deps();
    const p = await publisher({ concurrency: 32, connections: 4 }, d);
    const before = server.stats.publishes;
    const errs = await Promise.all(Array.from({ length: 500 }, (_, i) => publish(p, message(`burst-${i}`))));
    expect(errs.filter((e) => e !== null)).toEqual([]);
    expect(server.stats.publishes).toBe(before + 500);
    expect(await metricValue(d.metrics, 'cellgate_publish_total', { outcome: 'ok' })).toBe(500);
  });
});

describe('aws-iot wire details', () => {
  it('percent-encodes the whole topic into one path segment', () => {
    expect(publishPath("a/b c/ü/(x)*!'~")).toBe('/topics/a%2Fb%20c%2F%C3%BC%2F%28x%29%2A%21%27~');
  });

  it('finds the region in an ATS endpoint and the endpoint in the environment', () => {
    expect(regionOfEndpoint('a1b2c3-ats.iot.eu-west-1.amazonaws.com')).toBe('eu-west-1');
    expect(regionOfEndpoint('a1b2c3-ats.iot.cn-north-1.amazonaws.com.cn')).toBe('cn-north-1');
    expect(regionOfEndpoint('localhost')).toBeUndefined();
    expect(endpointUrl('a1b2c3-ats.iot.eu-west-1.amazonaws.com', {}).href).toBe(
      'https://a1b2c3-ats.iot.eu-west-1.amazonaws.com/',
    );
    expect(endpointUrl('', { AWS_ENDPOINT_URL_IOT_DATA_PLANE: 'http://127.0.0.1:9' }).port).toBe('9');
    expect(() => endpointUrl('', {})).toThrow(/describe-endpoint/);
  });
});
