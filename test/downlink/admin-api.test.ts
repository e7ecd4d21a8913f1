/**
 * The admin API in the IoT Data Plane's wire shape: driven by the real AWS SDK client and the AWS CLI (SigV4
 * with the configured access key), by curl-style bearer requests, and with bad input.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteThingShadowCommand,
  GetThingShadowCommand,
  IoTDataPlaneClient,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { coapExchange } from '../support/libcoap.js';

const ACCESS_KEY = 'AKIDCELLGATEADMIN';
const SECRET = 'admin/secret+key=with~odd chars';
const TOKEN = 'tok-3f1d2c';

function client(port: number, secret = SECRET): IoTDataPlaneClient {
  return new IoTDataPlaneClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'eu-west-1',
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: secret },
    maxAttempts: 1,
  });
}

const json = (u: Uint8Array | undefined) =>
  JSON.parse(Buffer.from(u ?? []).toString()) as Record<string, unknown>;
const payload = (v: unknown) => Buffer.from(JSON.stringify(v));

async function sdkError(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('expected an error');
}

function aws(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('aws', args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

describe('admin API (SigV4 and bearer token)', () => {
  let gw: TestGateway;
  let url: (p: string) => string;
  let work: string;
  const bearer = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    gw = await startTestGateway({
      config: {
        admin: {
          token: TOKEN,
          sigv4: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
          maxBodyBytes: 16384,
        },
        downlink: { commands: { maxQueuedPerThing: 2, maxCommandBytes: 64, maxTtlSeconds: 3600 } },
      },
    });
    url = (p) => `http://127.0.0.1:${gw.ports.http}${p}`;
    work = mkdtempSync(join(tmpdir(), 'cellgate-admin-'));
  });
  afterAll(async () => {
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('the AWS SDK updates, reads and deletes a named shadow', async () => {
    const c = client(gw.ports.http);
    const up = await c.send(
      new UpdateThingShadowCommand({
        thingName: 'sdk:thing-1',
        shadowName: 'downlink',
        payload: payload({ state: { desired: { interval: 30 } }, clientToken: 'ct-1' }),
      }),
    );
    expect(json(up.payload)).toMatchObject({
      version: 1,
      clientToken: 'ct-1',
      state: { desired: { interval: 30 } },
    });
    const got = json(
      (await c.send(new GetThingShadowCommand({ thingName: 'sdk:thing-1', shadowName: 'downlink' }))).payload,
    );
    expect(got).toMatchObject({ version: 1, state: { desired: { interval: 30 }, delta: { interval: 30 } } });
    const del = json(
      (await c.send(new DeleteThingShadowCommand({ thingName: 'sdk:thing-1', shadowName: 'downlink' })))
        .payload,
    );
    expect(del).toMatchObject({ version: 1 });
    const missing = await sdkError(
      c.send(new GetThingShadowCommand({ thingName: 'sdk:thing-1', shadowName: 'downlink' })),
    );
    expect([missing.name, missing.status]).toEqual(['ResourceNotFoundException', 404]);
    c.destroy();
  });

  it('the AWS SDK gets 409 ConflictException for a stale version', async () => {
    const c = client(gw.ports.http);
    await c.send(
      new UpdateThingShadowCommand({
        thingName: 'sdk-2',
        shadowName: 'downlink',
        payload: payload({ state: { desired: { a: 1 } } }),
      }),
    );
    const e = await sdkError(
      c.send(
        new UpdateThingShadowCommand({
          thingName: 'sdk-2',
          shadowName: 'downlink',
          payload: payload({ state: { desired: { a: 2 } }, version: 5 }),
        }),
      ),
    );
    expect([e.name, e.status]).toEqual(['ConflictException', 409]);
    c.destroy();
  });

  it('a wrong secret or another shadow name is refused', async () => {
    const bad = client(gw.ports.http, 'not-the-secret');
    const e = await sdkError(
      bad.send(new GetThingShadowCommand({ thingName: 'sdk-2', shadowName: 'downlink' })),
    );
    expect(e.status).toBe(403);
    expect(e.message).toMatch(/signature/i);
    bad.destroy();
    const c = client(gw.ports.http);
    const other = await sdkError(
      c.send(new GetThingShadowCommand({ thingName: 'sdk-2', shadowName: 'config' })),
    );
    expect([other.name, other.status]).toEqual(['ResourceNotFoundException', 404]);
    expect(other.message).toMatch(/only the named shadow 'downlink'/);
    const classic = await sdkError(c.send(new GetThingShadowCommand({ thingName: 'sdk-2' })));
    expect(classic.status).toBe(404);
    c.destroy();
  });

  it('the AWS CLI (aws iot-data) sets and reads desired state', async () => {
    const env = {
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const shadowCall = (command: string, args: string[], extraEnv: Record<string, string> = {}) =>
      aws(
        [
          'iot-data',
          command,
          ...['--endpoint-url', `http://127.0.0.1:${gw.ports.http}`],
          ...['--thing-name', 'cli-thing', '--shadow-name', 'downlink'],
          ...args,
        ],
        { ...env, ...extraEnv },
      );
    const doc = join(work, 'desired.json');
    writeFileSync(doc, JSON.stringify({ state: { desired: { interval: 600, led: 'blue' } } }));
    const out = join(work, 'update.json');
    const up = await shadowCall('update-thing-shadow', ['--payload', `fileb://${doc}`, out]);
    expect(up.code, up.out).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({
      version: 1,
      state: { desired: { interval: 600, led: 'blue' } },
    });
    const got = join(work, 'get.json');
    const get = await shadowCall('get-thing-shadow', [got]);
    expect(get.code, get.out).toBe(0);
    expect(JSON.parse(readFileSync(got, 'utf8'))).toMatchObject({
      state: { delta: { interval: 600, led: 'blue' } },
    });
    const wrong = await shadowCall('get-thing-shadow', [got], { AWS_SECRET_ACCESS_KEY: 'wrong' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/InvalidSignatureException|signature/i);
  });

  it('bearer token: commands are queued and listed; no token or a wrong one is refused', async () => {
    const post = await fetch(url('/things/tok-thing/commands'), {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({ data: { reboot: true }, ttlSeconds: 60 }),
    });
    expect(post.status).toBe(201);
    const cmd = (await post.json()) as { id: number; state: string; expiresAt: string };
    expect(cmd.state).toBe('queued');
    expect(new Date(cmd.expiresAt).getTime() - Date.now()).toBeGreaterThan(55_000);
    const list = (await (await fetch(url('/things/tok-thing/commands'), { headers: bearer })).json()) as {
      commands: { id: number; data: unknown }[];
    };
    expect(list.commands).toMatchObject([{ id: cmd.id, data: { reboot: true } }]);
    const one = await fetch(url(`/things/tok-thing/commands/${cmd.id}`), { headers: bearer });
    expect(await one.json()).toMatchObject({ id: cmd.id, state: 'queued', attempts: 0 });
    const none = await fetch(url('/things/tok-thing/commands'));
    expect(none.status).toBe(401);
    expect(none.headers.get('x-amzn-errortype')).toBe('UnauthorizedException');
    const wrong = await fetch(url('/things/tok-thing/commands'), {
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
  });

  it.each([
    ['invalid JSON', '/things/t1/shadow?name=downlink', 'POST', '{oops', 400, 'InvalidRequestException'],
    [
      'a missing state',
      '/things/t1/shadow?name=downlink',
      'POST',
      '{"desired":{}}',
      400,
      'InvalidRequestException',
    ],
    [
      'a bad thing name',
      '/things/bad%20name/shadow?name=downlink',
      'GET',
      undefined,
      400,
      'InvalidRequestException',
    ],
    ['an unknown resource', '/things/t1/jobs', 'GET', undefined, 404, 'ResourceNotFoundException'],
    [
      'a deeper path',
      '/things/t1/shadow/extra?name=downlink',
      'GET',
      undefined,
      404,
      'ResourceNotFoundException',
    ],
    ['PUT on a shadow', '/things/t1/shadow?name=downlink', 'PUT', '{}', 405, 'MethodNotAllowedException'],
    ['DELETE on commands', '/things/t1/commands', 'DELETE', undefined, 405, 'MethodNotAllowedException'],
    [
      'a command without data',
      '/things/t1/commands',
      'POST',
      '{"ttlSeconds":5}',
      400,
      'InvalidRequestException',
    ],
    [
      'an unknown command field',
      '/things/t1/commands',
      'POST',
      '{"data":1,"x":2}',
      400,
      'InvalidRequestException',
    ],
    [
      'a TTL of 0',
      '/things/t1/commands',
      'POST',
      '{"data":1,"ttlSeconds":0}',
      400,
      'InvalidRequestException',
    ],
    [
      'a TTL over the maximum',
      '/things/t1/commands',
      'POST',
      '{"data":1,"ttlSeconds":3601}',
      400,
      'InvalidRequestException',
    ],
    [
      'a fractional TTL',
      '/things/t1/commands',
      'POST',
      '{"data":1,"ttlSeconds":1.5}',
      400,
      'InvalidRequestException',
    ],
    [
      'command data over the limit',
      '/things/t1/commands',
      'POST',
      JSON.stringify({ data: 'x'.repeat(80) }),
      413,
      'RequestEntityTooLargeException',
    ],
    [
      'a body over maxBodyBytes',
      '/things/t1/commands',
      'POST',
      'x'.repeat(20_000),
      413,
      'RequestEntityTooLargeException',
    ],
    ['an unknown command id', '/things/t1/commands/42', 'GET', undefined, 404, 'ResourceNotFoundException'],
  ])('refuses %s', async (_name, path, method, body, status, code) => {
    const res = await fetch(url(path), { method, headers: bearer, body });
    expect(res.status).toBe(status);
    expect(res.headers.get('x-amzn-errortype')).toBe(code);
    expect(((await res.json()) as { message: string }).message.length).toBeGreaterThan(0);
  });

  it('refuses a command once the thing’s queue is full (429)', async () => {
    const post = () =>
      fetch(url('/things/full-thing/commands'), { method: 'POST', headers: bearer, body: '{"data":1}' });
    expect((await post()).status).toBe(201);
    expect((await post()).status).toBe(201);
    const third = await post();
    expect(third.status).toBe(429);
    expect(third.headers.get('x-amzn-errortype')).toBe('LimitExceededException');
  });
});

describe('downlinks disabled', () => {
  it('uplinks get a plain 2.04, /shadow is no route, the admin API is absent', async () => {
    const gw = await startTestGateway({ config: { downlink: { enabled: false } } });
    try {
      expect(gw.downlinks).toBeUndefined();
      const up = await coapExchange(
        'coap-client-notls',
        ['-m', 'post', '-e', 'x'],
        `coap://127.0.0.1:${gw.coapPort}/t?id=dev-1`,
      );
      expect(up.responses.map((p) => [p.code, p.options.has('ETag')])).toEqual([['2.04', false]]);
      const get = await coapExchange(
        'coap-client-notls',
        ['-m', 'get'],
        `coap://127.0.0.1:${gw.coapPort}/shadow?id=dev-1`,
      );
      expect(get.responses[0].code).toBe('4.05');
      expect((await fetch(`http://127.0.0.1:${gw.ports.http}/things/t/commands`)).status).toBe(404);
    } finally {
      await gw.stop();
    }
  });
});

describe('admin API without credentials', () => {
  it('serves loopback clients; is absent when disabled', async () => {
    const open = await startTestGateway();
    const off = await startTestGateway({ config: { admin: { enabled: false } } });
    try {
      const res = await fetch(`http://127.0.0.1:${open.ports.http}/things/t/commands`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ thing: 't', commands: [] });
      expect((await fetch(`http://127.0.0.1:${off.ports.http}/things/t/commands`)).status).toBe(404);
    } finally {
      await open.stop();
      await off.stop();
    }
  });
});
