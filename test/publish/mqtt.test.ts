/**
 * The mqtt publisher against real Mosquitto brokers, checked by `mosquitto_sub`: the shared broker on
 * 127.0.0.1:1883 (unique topics), and a private TLS broker with X.509 client certificates.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createPublisher } from '../../src/publish/index.js';
import { mqttFailureKind } from '../../src/publish/mqtt.js';
import type { Publisher } from '../../src/publish/publisher.js';
import { makePki, removePki, Subscriber, TlsBroker, type Pki } from '../support/mosquitto.js';
import { freePort } from '../support/system.js';
import { deps, message, metricValue, publish } from './helpers.js';

const SHARED = 1883;
const open: Publisher[] = [];
const subs: Subscriber[] = [];

async function publisher(over: Record<string, unknown>, d = deps()) {
  const config = parseConfig({
    publisher: { type: 'mqtt', url: `mqtt://127.0.0.1:${SHARED}`, connectTimeoutMs: 3000, ...over },
  });
  const p = await createPublisher(config.publisher, d);
  open.push(p);
  return p;
}

function subscriber(port: number, filter: string, extra: string[] = [], version?: 'mqttv5' | 'mqttv311') {
  const s = new Subscriber(port, filter, extra, version);
  subs.push(s);
  return s;
}

afterAll(async () => {
  for (const s of subs) s.stop();
  await Promise.all(open.map((p) => p.close()));
});

describe('mqtt publisher (shared Mosquitto)', () => {
  it('MQTT 5, QoS 1: the subscriber sees every message with content type and user properties', async () => {
    const prefix = `cellgate-test/${randomUUID()}`;
    const sub = subscriber(SHARED, `${prefix}/#`);
    await sub.ready();
    const d = deps();
    const p = await publisher({ topic: `${prefix}/{thing}/{path}`, qos: 1, protocolVersion: 5 }, d);
    const n = 300;
    const errs = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        publish(p, message(`id-${i}`, `${prefix}/dev-${i % 7}/telemetry`, `dev-${i % 7}`)),
      ),
    );
    expect(errs.filter((e) => e !== null)).toEqual([]);
    await sub.waitFor(n);
    const byId = new Map(sub.messages.map((m) => [JSON.parse(m.payload).messageId as string, m]));
    expect(byId.size).toBe(n);
    for (let i = 0; i < n; i++) {
      const m = byId.get(`id-${i}`)!;
      expect(m.topic).toBe(`${prefix}/dev-${i % 7}/telemetry`);
      expect(m.qos).toBe(1);
      expect(m.contentType).toBe('application/json');
      expect(m.payloadFormat).toBe('1');
      expect(m.userProperties).toEqual([
        ['messageId', `id-${i}`],
        ['deviceId', `dev-${i % 7}`],
      ]);
    }
    expect(await metricValue(d.metrics, 'cellgate_mqtt_connected')).toBe(1);
    expect(await metricValue(d.metrics, 'cellgate_publish_total', { outcome: 'ok' })).toBe(n);
  });

  it('MQTT 3.1.1, QoS 0: messages arrive, without MQTT 5 properties', async () => {
    const prefix = `cellgate-test/${randomUUID()}`;
    const sub = subscriber(SHARED, `${prefix}/#`, [], 'mqttv311');
    await sub.ready();
    const p = await publisher({ qos: 0, protocolVersion: 4 });
    for (let i = 0; i < 20; i++) expect(await publish(p, message(`v4-${i}`, `${prefix}/t`))).toBeNull();
    await sub.waitFor(20);
    expect(sub.messages.map((m) => JSON.parse(m.payload).messageId)).toEqual(
      Array.from({ length: 20 }, (_, i) => `v4-${i}`),
    );
    expect(sub.messages[0]).toMatchObject({ contentType: '', userProperties: [] });
  });

  it('refuses a topic with wildcards without sending it', async () => {
    const p = await publisher({});
    expect((await publish(p, message('w', 'cellgate-test/+/x')))?.message).toMatch(
      /rejected: invalid MQTT topic/,
    );
  });

  it('answers 5.03 when no broker is reachable', async () => {
    const port = await freePort();
    const p = await publisher({
      url: `mqtt://127.0.0.1:${port}`,
      connectTimeoutMs: 300,
      deadlineMs: 300,
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    });
    const err = await publish(p, message('nobody'));
    expect(err?.message).toMatch(/not connected to the MQTT broker/);
    expect(err?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });

  it('maps MQTT 5 reason codes to retry decisions', () => {
    expect(mqttFailureKind(0x87)).toBe('auth');
    expect(mqttFailureKind(0x97)).toBe('throttled');
    expect(mqttFailureKind(0x90)).toBe('rejected');
    expect(mqttFailureKind(0x80)).toBe('server');
    expect(mqttFailureKind(undefined)).toBe('network');
  });
});

describe('mqtt publisher over TLS with X.509 client certificates (private Mosquitto)', () => {
  let pki: Pki;
  let broker: TlsBroker;

  beforeAll(async () => {
    pki = makePki();
    broker = await TlsBroker.start(pki);
  });

  afterAll(() => {
    broker?.stop();
    if (pki) removePki(pki);
  });

  const tlsSub = () =>
    subscriber(broker.port, 'secure/#', [
      '--cafile',
      pki.ca,
      '--cert',
      pki.clientCert,
      '--key',
      pki.clientKey,
    ]);

  it('publishes with a client certificate the broker trusts', async () => {
    const sub = tlsSub();
    await sub.ready();
    const p = await publisher({
      url: `mqtts://127.0.0.1:${broker.port}`,
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey },
      clientId: 'cellgate-tls-test',
    });
    for (let i = 0; i < 25; i++)
      expect(await publish(p, message(`tls-${i}`, 'secure/dev/telemetry'))).toBeNull();
    await sub.waitFor(25);
    expect(new Set(sub.messages.map((m) => JSON.parse(m.payload).messageId)).size).toBe(25);
    expect(sub.messages[0].userProperties).toContainEqual(['messageId', 'tls-0']);
  });

  it('cannot publish without a trusted certificate', async () => {
    for (const tls of [{ ca: pki.ca }, { ca: pki.ca, cert: pki.rogueCert, key: pki.rogueKey }]) {
      const p = await publisher({
        url: `mqtts://127.0.0.1:${broker.port}`,
        tls,
        connectTimeoutMs: 1000,
        deadlineMs: 200,
        retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 5 },
      });
      expect((await publish(p, message('untrusted', 'secure/x')))?.message).toMatch(/not connected/);
    }
  });

  it('does not trust a broker whose CA it was not given', async () => {
    const p = await publisher({
      url: `mqtts://127.0.0.1:${broker.port}`,
      tls: { cert: pki.clientCert, key: pki.clientKey },
      connectTimeoutMs: 1000,
      deadlineMs: 200,
      retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 5 },
    });
    expect((await publish(p, message('unverified', 'secure/x')))?.message).toMatch(/not connected/);
  });
});
