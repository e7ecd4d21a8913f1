/** The test IoT Data Plane server, driven by the real AWS SDK client. */
import { fileURLToPath } from 'node:url';
import {
  ConflictException,
  DeleteThingShadowCommand,
  GetThingShadowCommand,
  InvalidRequestException,
  IoTDataPlaneClient,
  ListNamedShadowsForThingCommand,
  PublishCommand,
  RequestEntityTooLargeException,
  ResourceNotFoundException,
  ThrottlingException,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nextMessage, spawnTs } from '../support/child.js';
import { FAULTS, IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';

let server: IotDataPlaneServer;
let client: IoTDataPlaneClient;

function sdk(over: Partial<ConstructorParameters<typeof IoTDataPlaneClient>[0]> = {}) {
  return new IoTDataPlaneClient({
    region: 'us-east-1',
    endpoint: server.url,
    credentials: TEST_CREDENTIAL,
    ...over,
  });
}

const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));
const parse = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload!).toString('utf8'));

beforeAll(async () => {
  server = await IotDataPlaneServer.start();
  client = sdk();
});

afterAll(async () => {
  client.destroy();
  await server.close();
});

beforeEach(() => server.clearFaults());

describe('Publish', () => {
  it('records topic, payload, QoS, retain, content type and MQTT 5 properties', async () => {
    const before = server.publishes.length;
    const topic = 'cellgate/thing:1/a b/ü/$x?&=%/(*)';
    await client.send(
      new PublishCommand({
        topic,
        qos: 1,
        retain: true,
        payload: Buffer.from('{"a":1}'),
        contentType: 'application/json',
        responseTopic: 'replies/1',
        messageExpiry: 60,
        payloadFormatIndicator: 'UTF8_DATA',
        userProperties: JSON.stringify([{ messageId: 'm-1' }, { deviceId: 'dev 1' }, { deviceId: 'twice' }]),
      }),
    );
    const p = server.publishes[before];
    expect(p.topic).toBe(topic);
    expect(p.payload.toString()).toBe('{"a":1}');
    expect(p).toMatchObject({
      qos: 1,
      retain: true,
      contentType: 'application/json',
      responseTopic: 'replies/1',
      messageExpiry: 60,
      payloadFormatIndicator: 'UTF8_DATA',
      accessKeyId: TEST_CREDENTIAL.accessKeyId,
    });
    expect(p.userProperties).toEqual([
      ['messageId', 'm-1'],
      ['deviceId', 'dev 1'],
      ['deviceId', 'twice'],
    ]);
  });

  it('defaults to QoS 0 without retain or properties', async () => {
    await client.send(new PublishCommand({ topic: 'plain', payload: Buffer.from('x') }));
    expect(server.publishes.at(-1)).toMatchObject({
      topic: 'plain',
      qos: 0,
      retain: false,
      userProperties: [],
    });
  });

  it('rejects a wrong secret, a wrong region and an unknown key', async () => {
    const rejected = server.stats.rejectedSignatures;
    for (const c of [
      sdk({ credentials: { ...TEST_CREDENTIAL, secretAccessKey: 'wrong' } }),
      sdk({ region: 'eu-west-1' }),
      sdk({ credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } }),
    ]) {
      await expect(
        c.send(new PublishCommand({ topic: 't', payload: Buffer.from('x') })),
      ).rejects.toMatchObject({
        $metadata: { httpStatusCode: 403 },
      });
      c.destroy();
    }
    expect(server.stats.rejectedSignatures).toBe(rejected + 3);
  });

  it('refuses wildcards, bad QoS and payloads over 128 KB', async () => {
    await expect(
      client.send(new PublishCommand({ topic: 'a/+/b', payload: Buffer.from('x') })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(
      client.send(new PublishCommand({ topic: 'big', payload: Buffer.alloc(128 * 1024 + 1) })),
    ).rejects.toBeInstanceOf(RequestEntityTooLargeException);
  });

  it('injects 429s that the SDK sees as throttling and retries', async () => {
    server.inject(FAULTS.throttle, 1, 'publish');
    const before = server.stats.publishes;
    await client.send(new PublishCommand({ topic: 'retried', payload: Buffer.from('x') }));
    expect(server.stats.publishes).toBe(before + 1);
    const once = sdk({ maxAttempts: 1 });
    server.inject(FAULTS.throttle, 1, 'publish');
    await expect(
      once.send(new PublishCommand({ topic: 't', payload: Buffer.from('x') })),
    ).rejects.toBeInstanceOf(ThrottlingException);
    once.destroy();
  });

  it('injects 5xx answers and answers that never come', async () => {
    const once = sdk({
      maxAttempts: 1,
      requestHandler: { requestTimeout: 150, throwOnRequestTimeout: true },
    });
    server.inject(FAULTS.unavailable, 1);
    await expect(
      once.send(new PublishCommand({ topic: 't', payload: Buffer.from('x') })),
    ).rejects.toMatchObject({
      $metadata: { httpStatusCode: 503 },
    });
    server.inject(FAULTS.hang, 1);
    const t0 = Date.now();
    await expect(once.send(new PublishCommand({ topic: 't', payload: Buffer.from('x') }))).rejects.toThrow();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    once.destroy();
  });
});

describe('Device shadows', () => {
  it('updates, merges, computes the delta and keeps metadata', async () => {
    const thing = 'shadow-thing-1';
    const r1 = await client.send(
      new UpdateThingShadowCommand({
        thingName: thing,
        payload: json({
          state: { desired: { led: 'on', cfg: { rate: 60, mode: 'eco' }, list: [1, 2] } },
          clientToken: 'tok-1',
        }),
      }),
    );
    const u1 = parse(r1.payload);
    expect(u1).toMatchObject({ version: 1, clientToken: 'tok-1', state: { desired: { led: 'on' } } });
    expect(u1.metadata.desired.cfg.rate.timestamp).toEqual(expect.any(Number));

    await client.send(
      new UpdateThingShadowCommand({
        thingName: thing,
        payload: json({ state: { reported: { led: 'on', cfg: { rate: 30, mode: 'eco' }, list: [1] } } }),
      }),
    );
    const g = parse((await client.send(new GetThingShadowCommand({ thingName: thing }))).payload);
    expect(g.version).toBe(2);
    expect(g.state.delta).toEqual({ cfg: { rate: 60 }, list: [1, 2] });
    expect(g.metadata.reported.led.timestamp).toEqual(expect.any(Number));

    // null deletes a field; arrays are replaced whole
    await client.send(
      new UpdateThingShadowCommand({
        thingName: thing,
        payload: json({ state: { desired: { led: null, list: [1] }, reported: { cfg: { rate: 60 } } } }),
      }),
    );
    const g2 = parse((await client.send(new GetThingShadowCommand({ thingName: thing }))).payload);
    expect(g2.state.desired).toEqual({ cfg: { rate: 60, mode: 'eco' }, list: [1] });
    expect(g2.state.delta).toBeUndefined();
    expect(g2.version).toBe(3);
  });

  it('answers a stale version with 409 ConflictException', async () => {
    const thing = 'shadow-thing-2';
    await client.send(
      new UpdateThingShadowCommand({ thingName: thing, payload: json({ state: { desired: { a: 1 } } }) }),
    );
    await client.send(
      new UpdateThingShadowCommand({
        thingName: thing,
        payload: json({ state: { desired: { a: 2 } }, version: 1 }),
      }),
    );
    await expect(
      client.send(
        new UpdateThingShadowCommand({
          thingName: thing,
          payload: json({ state: { desired: { a: 3 } }, version: 1 }),
        }),
      ),
    ).rejects.toBeInstanceOf(ConflictException);
  });

  it('deletes a shadow (404 afterwards) and carries its version on', async () => {
    const thing = 'shadow-thing-3';
    await client.send(
      new UpdateThingShadowCommand({ thingName: thing, payload: json({ state: { reported: { x: 1 } } }) }),
    );
    await client.send(
      new UpdateThingShadowCommand({ thingName: thing, payload: json({ state: { reported: { x: 2 } } }) }),
    );
    const del = parse((await client.send(new DeleteThingShadowCommand({ thingName: thing }))).payload);
    expect(del.version).toBe(2);
    await expect(client.send(new GetThingShadowCommand({ thingName: thing }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    const again = parse(
      (
        await client.send(
          new UpdateThingShadowCommand({
            thingName: thing,
            payload: json({ state: { reported: { x: 3 } } }),
          }),
        )
      ).payload,
    );
    expect(again.version).toBe(3);
  });

  it('keeps named shadows apart and lists them page by page', async () => {
    const thing = 'shadow-thing-4';
    for (const name of ['cfg', 'fw', 'alarms']) {
      await client.send(
        new UpdateThingShadowCommand({
          thingName: thing,
          shadowName: name,
          payload: json({ state: { desired: { name } } }),
        }),
      );
    }
    await client.send(
      new UpdateThingShadowCommand({
        thingName: thing,
        payload: json({ state: { desired: { classic: true } } }),
      }),
    );
    const fw = parse(
      (await client.send(new GetThingShadowCommand({ thingName: thing, shadowName: 'fw' }))).payload,
    );
    expect(fw.state.desired).toEqual({ name: 'fw' });
    const p1 = await client.send(new ListNamedShadowsForThingCommand({ thingName: thing, pageSize: 2 }));
    expect(p1.results).toEqual(['alarms', 'cfg']);
    expect(p1.nextToken).toBeDefined();
    const p2 = await client.send(
      new ListNamedShadowsForThingCommand({ thingName: thing, pageSize: 2, nextToken: p1.nextToken }),
    );
    expect(p2.results).toEqual(['fw']);
    expect(p2.nextToken).toBeUndefined();
    await expect(
      client.send(new GetThingShadowCommand({ thingName: thing, shadowName: 'nope' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('refuses bad documents: invalid JSON, missing state, deep nesting, long client tokens, 8 KB', async () => {
    const bad = [
      Buffer.from('{not json'),
      json({ desired: {} }),
      json({ state: { desired: 5 } }),
      json({ state: { desired: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } } }),
      json({ state: { desired: {} }, clientToken: 'x'.repeat(65) }),
    ];
    for (const payload of bad) {
      await expect(
        client.send(new UpdateThingShadowCommand({ thingName: 'bad-doc', payload })),
      ).rejects.toBeInstanceOf(InvalidRequestException);
    }
    await expect(
      client.send(
        new UpdateThingShadowCommand({
          thingName: 'bad-doc',
          payload: json({ state: { desired: { big: 'x'.repeat(9000) } } }),
        }),
      ),
    ).rejects.toBeInstanceOf(RequestEntityTooLargeException);
  });
});

describe('as a separate process', () => {
  it('serves the SDK, answers stats and injects faults over IPC', async () => {
    const main = fileURLToPath(new URL('../support/iot-data-plane-server-main.ts', import.meta.url));
    const child = spawnTs(main, ['--region', 'eu-central-1']);
    try {
      const { port } = await nextMessage<{ port: number }>(child, 'listening');
      const c = new IoTDataPlaneClient({
        region: 'eu-central-1',
        endpoint: `http://127.0.0.1:${port}`,
        credentials: TEST_CREDENTIAL,
        maxAttempts: 1,
      });
      await c.send(new PublishCommand({ topic: 'over/ipc', payload: Buffer.from('x') }));
      child.send({ type: 'inject', fault: FAULTS.throttle, count: 1 });
      child.send({ type: 'stats' }); // ordered after the inject
      await nextMessage(child, 'stats');
      await expect(
        c.send(new PublishCommand({ topic: 'over/ipc', payload: Buffer.from('x') })),
      ).rejects.toBeInstanceOf(ThrottlingException);
      child.send({ type: 'stats' });
      const stats = await nextMessage<{ stats: { publishes: number; faults: number } }>(child, 'stats');
      expect(stats.stats).toMatchObject({ publishes: 1, faults: 1 });
      c.destroy();
    } finally {
      child.kill('SIGTERM');
    }
  });
});
