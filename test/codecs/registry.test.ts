import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codecsSchema } from '../../src/config/codecs.js';
import { CodecRegistry } from '../../src/codecs/registry.js';
import { MemoryRegistry } from '../../src/devices/memory-registry.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import { device, downlink, FIXTURES, hex, uplink } from './support.js';

describe('codec registry: picking a codec', () => {
  const registry = new CodecRegistry({ baseDir: FIXTURES });
  afterAll(() => registry.close());

  it('uses the Content-Format when the device names no codec (50 json, 60 cbor, 110/112 senml, else raw)', async () => {
    const d = device();
    await registry.prepare([d]);
    expect(registry.decode(d, Buffer.from('{"a":1}'), uplink({ contentFormat: 50 }))).toEqual({
      codec: 'json',
      data: { a: 1 },
    });
    expect(registry.decode(d, hex('a1616101'), uplink({ contentFormat: 60 }))).toEqual({
      codec: 'cbor',
      data: { a: 1 },
    });
    expect(
      registry.decode(d, Buffer.from('[{"n":"x","v":1,"t":1e9}]'), uplink({ contentFormat: 110 })),
    ).toEqual({
      codec: 'senml',
      data: [{ n: 'x', v: 1, t: 1e9 }],
    });
    expect(registry.decode(d, hex('81a3 006178 0201 061a3b9aca00'), uplink({ contentFormat: 112 }))).toEqual({
      codec: 'senml',
      data: [{ n: 'x', v: 1, t: 1e9 }],
    });
    expect(registry.decode(d, hex('0102'), uplink({ contentFormat: 42 }))).toEqual({
      codec: 'raw',
      data: null,
    });
    expect(registry.decode(d, hex('0102'), uplink())).toEqual({ codec: 'raw', data: null });
  });

  it('decodes synchronously for in-process codecs once prepared', async () => {
    const d = device('cbor');
    await registry.prepare([d]);
    const r = registry.decode(d, hex('01'), uplink());
    expect(r).not.toBeInstanceOf(Promise);
    expect(r).toEqual({ codec: 'cbor', data: 1 });
  });

  it('prefers the per-path codec, then the device codec, over the Content-Format', async () => {
    const d = device('json', { raw: 'raw', '/bin': 'cbor' });
    await registry.prepare([d]);
    expect(registry.decode(d, Buffer.from('7'), uplink({ contentFormat: 60 }))).toEqual({
      codec: 'json',
      data: 7,
    });
    expect(registry.decode(d, Buffer.from('7'), uplink({ path: 'raw' }))).toEqual({
      codec: 'raw',
      data: null,
    });
    expect(registry.decode(d, hex('07'), uplink({ path: 'bin' }))).toEqual({ codec: 'cbor', data: 7 });
  });

  it('publishes a decode error instead of throwing on bad payloads', async () => {
    const d = device('json');
    await registry.prepare([d]);
    expect(registry.decode(d, Buffer.from('{'), uplink())).toEqual({
      codec: 'json',
      data: null,
      error: expect.stringMatching(/^JSON: /),
    });
  });

  it('reports an unknown codec and decodes its devices with an error', async () => {
    const d = device('nope');
    const report = await registry.prepare([d]);
    expect(report.failed).toEqual([
      {
        codec: 'nope',
        devices: ['dev-1'],
        error: expect.stringMatching(/^unknown codec "nope" \(built-in: raw, json/),
      },
    ]);
    expect(registry.decode(d, hex('00'), uplink())).toMatchObject({
      codec: 'nope',
      data: null,
      error: /unknown codec/,
    });
  });

  it('decodes for a device the last prepare did not see (asynchronously)', async () => {
    const late = device({ name: 'senml', options: { format: 'json' } }, undefined, 'late');
    const r = registry.decode(late, Buffer.from('[{"n":"a","v":2,"t":5e8}]'), uplink());
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toEqual({ codec: 'senml', data: [{ n: 'a', v: 2, t: 5e8 }] });
    expect(registry.decode(late, Buffer.from('[{"n":"a","v":3,"t":5e8}]'), uplink())).toEqual({
      codec: 'senml',
      data: [{ n: 'a', v: 3, t: 5e8 }],
    });
  });

  it('follows a device registry: prepares its devices and again after a change', async () => {
    const devices = new MemoryRegistry([device('json', undefined, 'f1')]);
    const follow = registry.follow(devices);
    await follow.ready;
    expect(registry.decode(devices.get('f1')!, Buffer.from('1'), uplink())).toEqual({
      codec: 'json',
      data: 1,
    });
    devices.replace([device('cbor', undefined, 'f1'), device('raw', undefined, 'f2')]);
    await new Promise((r) => setTimeout(r, 50));
    expect(registry.decode(devices.get('f1')!, hex('02'), uplink())).toEqual({ codec: 'cbor', data: 2 });
    follow.stop();
  });
});

describe('codec registry: downlinks', () => {
  const registry = new CodecRegistry({ baseDir: FIXTURES });
  afterAll(() => registry.close());

  it('sends bytes as they are, honours Accept, else the device codec, else JSON', async () => {
    const plain = device(undefined, undefined, 'plain');
    const proto = device(
      {
        name: 'protobuf',
        options: {
          proto: 'telemetry.proto',
          type: 'cellgate.test.Telemetry',
          downlinkType: 'cellgate.test.Command',
        },
      },
      undefined,
      'proto',
    );
    const raw = device('raw', undefined, 'raw');
    await registry.prepare([plain, proto, raw]);
    expect(await registry.encodeDownlink(proto, Buffer.from([1, 2]), downlink())).toEqual({
      codec: 'raw',
      bytes: Buffer.from([1, 2]),
      contentFormat: 42,
    });
    expect(await registry.encodeDownlink(proto, { a: 1 }, downlink({ accept: 50 }))).toEqual({
      codec: 'json',
      bytes: Buffer.from('{"a":1}'),
      contentFormat: 50,
    });
    expect(await registry.encodeDownlink(proto, { a: 1 }, downlink({ accept: 60 }))).toEqual({
      codec: 'cbor',
      bytes: hex('a1616101'),
      contentFormat: 60,
    });
    expect(await registry.encodeDownlink(proto, { action: 'on' }, downlink())).toEqual({
      codec: 'protobuf',
      bytes: hex('0a026f6e'),
      contentFormat: 42,
    });
    expect(await registry.encodeDownlink(plain, { a: 1 }, downlink())).toMatchObject({
      codec: 'json',
      contentFormat: 50,
    });
    expect(await registry.encodeDownlink(raw, { a: 1 }, downlink())).toEqual({
      codec: 'raw',
      bytes: null,
      error: 'raw codec encodes only bytes or a base64 string',
    });
  });
});

describe('codec registry: user plugins in the gateway thread (isolation none)', () => {
  const metrics = createMetricsRegistry(false);
  const log = silentLogger();
  const config = codecsSchema.parse({
    timeoutMs: 150,
    maxPending: 4,
    plugins: { mine: { module: './plugins/in-process.ts', isolation: 'none' } },
  });
  const registry = new CodecRegistry({
    baseDir: FIXTURES,
    config,
    metrics,
    log,
    caps: new CapReporter(metrics, log),
  });
  const d = device('mine');
  afterAll(() => registry.close());

  it('runs the plugin and classes its failures', async () => {
    expect((await registry.prepare([d])).failed).toEqual([]);
    expect(registry.decode(d, hex('09'), uplink())).toEqual({ codec: 'mine', data: { n: 9 } });
    expect(registry.decode(d, hex('01'), uplink())).toEqual({
      codec: 'mine',
      data: null,
      error: 'byte 1 is not allowed',
    });
    expect(registry.decode(d, hex('02'), uplink())).toEqual({
      codec: 'mine',
      data: null,
      error: 'codec fault: plugin bug',
    });
    expect(registry.decode(d, hex('04'), uplink())).toMatchObject({
      error: /holds a bigint, which has no JSON form/,
    });
    expect(registry.decode(d, hex('05'), uplink())).toMatchObject({ error: /decoded data has a cycle/ });
    expect(await registry.decode(d, hex('06'), uplink())).toEqual({ codec: 'mine', data: { later: true } });
    const text = await metrics.metrics();
    expect(text).toMatch(/cellgate_codec_decode_failures_total\{codec="mine",reason="error"\} 1/);
    expect(text).toMatch(/cellgate_codec_decode_failures_total\{codec="mine",reason="exception"\} 1/);
    expect(text).toMatch(/cellgate_codec_decode_failures_total\{codec="mine",reason="invalid"\} 2/);
    expect(text).toMatch(/cellgate_codec_decode_seconds_count\{codec="mine"\} 6/);
    expect(text).toMatch(/cellgate_codec_decode_seconds_bucket\{le="\+Inf",codec="mine"\} 6/);
  });

  it('times out an asynchronous decode that never answers', async () => {
    const started = Date.now();
    expect(await registry.decode(d, hex('03'), uplink())).toEqual({
      codec: 'mine',
      data: null,
      error: 'no answer within 150 ms',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(await metrics.metrics()).toMatch(
      /cellgate_codec_decode_failures_total\{codec="mine",reason="timeout"\} 1/,
    );
  });

  it('refuses asynchronous work beyond maxPending', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => registry.decode(d, hex('06'), uplink())),
    );
    expect(results.filter((r) => r.error === undefined)).toHaveLength(4);
    expect(results.filter((r) => r.error === 'too many decodes in flight')).toHaveLength(2);
    const text = await metrics.metrics();
    expect(text).toMatch(/cellgate_cap_hits_total\{cap="codec_pending"\} 2/);
    expect(text).toMatch(/cellgate_codec_pending 0/);
  });

  it('closes with pending work answered', async () => {
    const pending = registry.decode(d, hex('03'), uplink());
    await registry.close();
    expect(await pending).toEqual({ codec: 'mine', data: null, error: 'the codec registry closed' });
  });
});

describe('codec registry: user plugins in the sandbox (isolation worker, the default)', () => {
  const metrics = createMetricsRegistry(false);
  const config = codecsSchema.parse({
    timeoutMs: 2000,
    plugins: { iso: './plugins/isolated.mjs' },
    sandbox: { callTimeoutMs: 100, maxHeapMb: 32 },
  });
  const registry = new CodecRegistry({ baseDir: FIXTURES, config, metrics });
  const d = device({ name: 'iso', options: { scale: 2 } });
  afterAll(() => registry.close());

  it('decodes and encodes through the worker with the plugin API', async () => {
    expect((await registry.prepare([d])).failed).toEqual([]);
    expect(await registry.decode(d, hex('0102'), uplink({ path: 'a/b' }))).toEqual({
      codec: 'iso',
      data: { sum: 3, path: 'a/b', scale: 2 },
    });
    expect(await registry.encodeDownlink(d, { level: 7 }, downlink())).toEqual({
      codec: 'iso',
      bytes: Buffer.from([7]),
      contentFormat: 42,
    });
  });

  it('gives the plugin no environment variables', async () => {
    expect(process.env.HOME).toBeDefined();
    expect(await registry.decode(d, hex('a0'), uplink())).toEqual({
      codec: 'iso',
      data: { home: null, baseDir: FIXTURES },
    });
  });

  it('classes DecodeError by name, other throws as faults', async () => {
    expect(await registry.decode(d, hex('dd'), uplink())).toEqual({
      codec: 'iso',
      data: null,
      error: 'not an isolated payload',
    });
    expect(await registry.decode(d, hex('dc'), uplink())).toEqual({
      codec: 'iso',
      data: null,
      error: 'codec fault: plugin bug on purpose',
    });
  });

  it('survives a plugin that loops forever or exhausts its heap', async () => {
    expect(await registry.decode(d, hex('ff'), uplink())).toEqual({
      codec: 'iso',
      data: null,
      error: 'codec iso ran longer than 100 ms',
    });
    // Whichever limit the heap hog reaches first ends its worker: the heap limit or the call time limit.
    const hog = await registry.decode(d, hex('ee'), uplink());
    expect(hog.error).toMatch(
      /^codec iso (went over the sandbox heap limit of 32 MiB|ran longer than 100 ms)$/,
    );
    expect(await registry.decode(d, hex('0303'), uplink())).toMatchObject({ data: { sum: 6 } });
    const memory = hog.error?.includes('heap') ? 1 : 0;
    const text = await metrics.metrics();
    expect(text).toContain(`cellgate_codec_sandbox_restarts_total{reason="timeout"} ${2 - memory}`);
    expect(text).toContain(`cellgate_codec_sandbox_restarts_total{reason="memory"} ${memory}`);
  });
});

describe('codec registry: reloads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-codecs-'));
  const registry = new CodecRegistry({ baseDir: dir });
  afterAll(async () => {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tries a codec that failed to be created again on the next prepare', async () => {
    const config = codecsSchema.parse({
      plugins: {
        late: { module: './late.mjs', isolation: 'none' },
        'late-iso': './late-iso.mjs',
      },
    });
    const retry = new CodecRegistry({ baseDir: dir, config });
    try {
      const a = device('late', undefined, 'a');
      const b = device('late-iso', undefined, 'b');
      const first = await retry.prepare([a, b]);
      expect(first.failed.map((f) => f.codec).sort()).toEqual(['late', 'late-iso']);
      expect(retry.decode(a, hex('00'), uplink())).toMatchObject({ error: /cannot load codec plugin late/ });
      const plugin =
        "export default { name: 'late', create: () => ({ name: 'late', decodeUplink: (b) => ({ data: b.length }) }) };";
      writeFileSync(join(dir, 'late.mjs'), plugin);
      writeFileSync(join(dir, 'late-iso.mjs'), plugin);
      expect((await retry.prepare([a, b])).failed).toEqual([]);
      expect(await retry.decode(a, hex('0102'), uplink())).toEqual({ codec: 'late', data: 2 });
      expect(await retry.decode(b, hex('010203'), uplink())).toEqual({ codec: 'late-iso', data: 3 });
    } finally {
      await retry.close();
    }
  });

  it('re-creates a codec whose script changed, on the next prepare', async () => {
    const script = join(dir, 'f.js');
    writeFileSync(script, 'function decodeUplink(i) { return { data: { version: 1 } }; }');
    const d1 = device({ name: 'js', options: { script: 'f.js' } });
    await registry.prepare([d1]);
    expect(await registry.decode(d1, hex('00'), uplink())).toEqual({ codec: 'js', data: { version: 1 } });
    // Same file: same codec.
    const d2 = device({ name: 'js', options: { script: 'f.js' } });
    await registry.prepare([d2]);
    expect(await registry.decode(d2, hex('00'), uplink())).toEqual({ codec: 'js', data: { version: 1 } });
    writeFileSync(script, 'function decodeUplink(i) { return { data: { version: 2 } }; }');
    utimesSync(script, new Date(), new Date(Date.now() + 5000));
    const d3 = device({ name: 'js', options: { script: 'f.js' } });
    await registry.prepare([d3]);
    expect(await registry.decode(d3, hex('00'), uplink())).toEqual({ codec: 'js', data: { version: 2 } });
  });
});

describe('codec registry: caps on sandbox work', () => {
  it('refuses messages beyond the sandbox queue and beyond maxPending, without unhandled rejections', async () => {
    const metrics = createMetricsRegistry(false);
    const log = silentLogger();
    const caps = new CapReporter(metrics, log);
    const script = { name: 'js', options: { script: 'formatters/ttn-v2.js' } };
    const small = new CodecRegistry({
      baseDir: FIXTURES,
      config: codecsSchema.parse({ sandbox: { maxQueue: 5 } }),
      metrics,
      log,
      caps,
    });
    const d = device(script);
    try {
      await small.prepare([d]);
      const results = await Promise.all(
        Array.from({ length: 40 }, () => small.decode(d, hex('01'), uplink())),
      );
      const full = results.filter((r) => r.error === 'the codec sandbox queue is full');
      expect(full.length).toBeGreaterThan(0);
      expect(results.filter((r) => r.error === undefined).length).toBe(40 - full.length);
      expect(await metrics.metrics()).toContain(
        `cellgate_cap_hits_total{cap="codec_sandbox_queue"} ${full.length}`,
      );
    } finally {
      await small.close();
    }
    const few = new CodecRegistry({ baseDir: FIXTURES, config: codecsSchema.parse({ maxPending: 3 }) });
    try {
      await few.prepare([d]);
      const results = await Promise.all(Array.from({ length: 10 }, () => few.decode(d, hex('01'), uplink())));
      expect(results.filter((r) => r.error === undefined)).toHaveLength(3);
      expect(results.filter((r) => r.error === 'too many decodes in flight')).toHaveLength(7);
    } finally {
      await few.close();
    }
  });
});
