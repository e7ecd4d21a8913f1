import { afterAll, describe, expect, it } from 'vitest';
import { codecsSchema } from '../../src/config/codecs.js';
import { CodecRegistry } from '../../src/codecs/registry.js';
import { createMetricsRegistry } from '../../src/ops/metrics.js';
import { device, downlink, FIXTURES, RECEIVED_AT, uplink } from './support.js';

const js = (script: string, extra: Record<string, unknown> = {}) => ({
  name: 'js',
  options: { script: `formatters/${script}`, ...extra },
});

describe('js codec: payload formatters from the device repository', () => {
  const registry = new CodecRegistry({ baseDir: FIXTURES });
  afterAll(() => registry.close());

  // Examples from vendor/elsys/ers-codec.yaml and ers-co2-codec.yaml of the device repository.
  it('decodes the Elsys ERS and ERS CO2 examples', async () => {
    const d = device(js('elsys.js'));
    expect((await registry.prepare([d])).failed).toEqual([]);
    const ers = Buffer.from([0x01, 0x00, 0xe2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06]);
    expect(await registry.decode(d, ers, uplink())).toEqual({
      codec: 'js',
      data: { temperature: 22.6, humidity: 41, light: 39, motion: 6 },
    });
    const co2 = Buffer.from([0x01, 0x00, 0xe2, 0x02, 0x29, 0x04, 0x00, 0x27, 0x05, 0x06, 0x06, 0x03, 0x08]);
    expect(await registry.decode(d, co2, uplink())).toEqual({
      codec: 'js',
      data: { temperature: 22.6, humidity: 41, light: 39, motion: 6, co2: 776 },
    });
  });

  // Examples from vendor/example/windsensor-codec.yaml: FPort comes from the codec options (per path).
  it('runs the wind sensor examples, uplink and downlink, with errors', async () => {
    const d = device(js('windsensor.js'), { legacy: js('windsensor.js', { fPort: 42 }) });
    expect((await registry.prepare([d])).failed).toEqual([]);
    expect(await registry.decode(d, Buffer.from([0, 32]), uplink())).toEqual({
      codec: 'js',
      data: { direction: 'N', speed: 32 },
    });
    expect(await registry.decode(d, Buffer.from([3, 19]), uplink())).toEqual({
      codec: 'js',
      data: { direction: 'W', speed: 19 },
    });
    expect(await registry.decode(d, Buffer.from([1, 42]), uplink())).toEqual({
      codec: 'js',
      data: { direction: 'E', speed: 42 },
    });
    expect(await registry.decode(d, Buffer.from([1, 42]), uplink({ path: 'legacy' }))).toEqual({
      codec: 'js',
      data: null,
      error: 'unknown FPort',
    });
    const green = await registry.encodeDownlink(d, { led: 'green' }, downlink());
    expect(green.error).toBeUndefined();
    expect([...(green.bytes ?? [])]).toEqual([1]);
    expect(await registry.encodeDownlink(d, { led: 'blue' }, downlink())).toEqual({
      codec: 'js',
      bytes: null,
      error: 'invalid LED color',
    });
  });

  it('runs ChirpStack v3 and TTN v2 formatter forms', async () => {
    const v3 = device(js('chirpstack-v3.js', { fPort: 7, variables: { site: 'north' } }), undefined, 'v3');
    const v2 = device(js('ttn-v2.js', { fPort: 3 }), undefined, 'v2');
    expect((await registry.prepare([v3, v2])).failed).toEqual([]);
    expect(await registry.decode(v3, Buffer.from([0x01, 0x02]), uplink())).toEqual({
      codec: 'js',
      data: { port: 7, level: 258, site: 'north' },
    });
    const enc = await registry.encodeDownlink(v3, { level: 513 }, downlink());
    expect([...(enc.bytes ?? [])]).toEqual([2, 1]);
    expect(await registry.decode(v2, Buffer.from([9, 9, 9]), uplink())).toEqual({
      codec: 'js',
      data: { port: 3, count: 3 },
    });
  });

  it('keeps each script in its own global scope', async () => {
    const a = device(js('implicit-global-a.js'), undefined, 'a');
    const b = device(js('implicit-global-b.js'), undefined, 'b');
    expect((await registry.prepare([a, b])).failed).toEqual([]);
    expect(await registry.decode(a, Buffer.from([0]), uplink())).toMatchObject({ data: { from: 'a' } });
    expect(await registry.decode(b, Buffer.from([0]), uplink())).toMatchObject({ data: { from: 'b' } });
  });

  it('decodes a burst of messages in batches, each with its own answer', async () => {
    const d = device(js('misbehaving.js'));
    await registry.prepare([d]);
    const results = await Promise.all(
      Array.from({ length: 600 }, (_, i) => registry.decode(d, Buffer.from([i % 100]), uplink())),
    );
    results.forEach((r, i) => expect(r).toMatchObject({ codec: 'js', data: { ok: true, first: i % 100 } }));
    expect(results[1]).toEqual({ codec: 'js', data: { ok: true, first: 1 }, warnings: ['first byte is 1'] });
  });

  it('shows scripts no Node.js APIs and formatter-style input', async () => {
    const d = device(js('misbehaving.js'));
    await registry.prepare([d]);
    expect(await registry.decode(d, Buffer.from([0xa0]), uplink())).toEqual({
      codec: 'js',
      data: { process: 'undefined', require: 'undefined', sab: 'undefined', isArray: true, recvTime: true },
    });
  });

  it('reports scripts that cannot load', async () => {
    const bad = [
      device(js('syntax-error.js'), undefined, 's'),
      device(js('no-decoder.js'), undefined, 'n'),
      device(js('missing.js'), undefined, 'm'),
      device({ name: 'js', options: {} }, undefined, 'o'),
    ];
    const report = await registry.prepare(bad);
    const errors = report.failed.map((f) => f.error).join('\n');
    expect(report.failed).toHaveLength(4);
    expect(errors).toMatch(/syntax-error\.js: .*Unexpected token/);
    expect(errors).toMatch(/no-decoder\.js: the script defines no decodeUplink function/);
    expect(errors).toMatch(/cannot read script .*missing\.js/);
    expect(errors).toMatch(/js codec options: "script" is required/);
    const r = await registry.decode(bad[0], Buffer.from([1]), uplink());
    expect(r).toMatchObject({ codec: 'js', data: null });
    expect(r.error).toMatch(/Unexpected token/);
  });
});

describe('js codec: a misbehaving script cannot take the gateway down', () => {
  const metrics = createMetricsRegistry(false);
  const config = codecsSchema.parse({ timeoutMs: 3000, sandbox: { maxHeapMb: 32, callTimeoutMs: 100 } });
  const registry = new CodecRegistry({ baseDir: FIXTURES, config, metrics });
  const d = device(js('misbehaving.js'));
  afterAll(() => registry.close());

  it('fails a throwing, non-JSON, oversized, too deep or over-allocating decode and goes on', async () => {
    expect((await registry.prepare([d])).failed).toEqual([]);
    const cases: [number, string, RegExp][] = [
      [0xdd, 'exception', /^codec fault: formatter bug on purpose$/],
      [0xcc, 'invalid', /no JSON form.*BigInt/],
      [0xbb, 'invalid', /larger than 65536 bytes/],
      [0xba, 'invalid', /nests deeper than 64/],
      [0xb0, 'exception', /Uint8Array of 67108864 bytes is over the sandbox limit/],
    ];
    for (const [byte, , message] of cases) {
      const r = await registry.decode(d, Buffer.from([byte]), uplink());
      expect(r.data).toBeNull();
      expect(r.error).toMatch(message);
    }
    expect(await registry.decode(d, Buffer.from([7]), uplink())).toEqual({
      codec: 'js',
      data: { ok: true, first: 7 },
    });
    const text = await metrics.metrics();
    for (const [, reason] of cases)
      expect(text).toMatch(
        new RegExp(`cellgate_codec_decode_failures_total\\{codec="js",reason="${reason}"\\} [1-9]`),
      );
  });

  it('ends a hanging decode, replaces the worker, and retries the other messages there', async () => {
    const started = Date.now();
    const [hung, ...others] = await Promise.all([
      registry.decode(d, Buffer.from([0xff]), uplink()),
      ...Array.from({ length: 20 }, (_, i) => registry.decode(d, Buffer.from([i]), uplink())),
    ]);
    expect(hung).toEqual({ codec: 'js', data: null, error: 'codec js ran longer than 100 ms' });
    others.forEach((r, i) => expect(r).toMatchObject({ codec: 'js', data: { ok: true, first: i } }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await metrics.metrics()).toMatch(/cellgate_codec_sandbox_restarts_total\{reason="timeout"\} 1/);
    expect(await metrics.metrics()).toMatch(
      /cellgate_codec_decode_failures_total\{codec="js",reason="timeout"\} 1/,
    );
  });

  it('refuses a script that hangs while loading', async () => {
    const report = await registry.prepare([d, device(js('hangs-at-load.js'), undefined, 'h')]);
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0].error).toMatch(/the script ran longer than 100 ms while loading/);
    await expect(registry.decode(d, Buffer.from([4]), uplink())).resolves.toMatchObject({
      data: { first: 4 },
    });
  });
});

describe('js codec: a memory-hungry script', () => {
  const metrics = createMetricsRegistry(false);
  const config = codecsSchema.parse({ timeoutMs: 5000, sandbox: { maxHeapMb: 32, callTimeoutMs: 5000 } });
  const registry = new CodecRegistry({ baseDir: FIXTURES, config, metrics });
  afterAll(() => registry.close());

  it('ends the worker at its heap limit; the gateway thread is unharmed and goes on', async () => {
    const d = device(js('misbehaving.js'));
    await registry.prepare([d]);
    const heapBefore = process.memoryUsage().heapUsed;
    const [hog, ok] = await Promise.all([
      registry.decode(d, Buffer.from([0xee]), uplink({ receivedAt: RECEIVED_AT })),
      registry.decode(d, Buffer.from([5]), uplink()),
    ]);
    expect(hog).toEqual({
      codec: 'js',
      data: null,
      error: 'codec js went over the sandbox heap limit of 32 MiB',
    });
    expect(ok).toMatchObject({ data: { first: 5 } });
    await expect(registry.decode(d, Buffer.from([6]), uplink())).resolves.toMatchObject({
      data: { first: 6 },
    });
    expect(await metrics.metrics()).toMatch(/cellgate_codec_sandbox_restarts_total\{reason="memory"\} 1/);
    expect(await metrics.metrics()).toMatch(
      /cellgate_codec_decode_failures_total\{codec="js",reason="memory"\} 1/,
    );
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('js codec: a script that keeps killing its worker is disabled', () => {
  const config = codecsSchema.parse({ timeoutMs: 5000, sandbox: { callTimeoutMs: 40 } });
  const registry = new CodecRegistry({ baseDir: FIXTURES, config });
  afterAll(() => registry.close());

  it('disables the codec after three worker restarts within a minute', async () => {
    const d = device(js('misbehaving.js'));
    await registry.prepare([d]);
    for (let i = 0; i < 3; i++) {
      const r = await registry.decode(d, Buffer.from([0xff]), uplink());
      expect(r.error).toBe('codec js ran longer than 40 ms');
    }
    const r = await registry.decode(d, Buffer.from([1]), uplink());
    expect(r.error).toMatch(/^codec js is disabled for \d+ s after crashing its worker$/);
  });
});

describe('js codec: several sandbox workers', () => {
  const metrics = createMetricsRegistry(false);
  const config = codecsSchema.parse({
    timeoutMs: 3000,
    sandbox: { workers: 2, maxBatch: 16, callTimeoutMs: 100 },
  });
  const registry = new CodecRegistry({ baseDir: FIXTURES, config, metrics });
  afterAll(() => registry.close());

  it('spreads batches over the workers; a hang in one leaves the other serving', async () => {
    const d = device(js('misbehaving.js'));
    await registry.prepare([d]);
    const results = await Promise.all([
      registry.decode(d, Buffer.from([0xff]), uplink()),
      ...Array.from({ length: 200 }, (_, i) => registry.decode(d, Buffer.from([i % 50]), uplink())),
    ]);
    expect(results[0].error).toBe('codec js ran longer than 100 ms');
    results.slice(1).forEach((r, i) => expect(r).toMatchObject({ data: { ok: true, first: i % 50 } }));
    const text = await metrics.metrics();
    expect(text).toContain('cellgate_codec_sandbox_restarts_total{reason="timeout"} 1');
    expect(text).toContain('cellgate_codec_sandbox_queued 0');
  });
});

describe('js codec: batching', () => {
  it('holds a lone message up to batchDelayMs for company, and sends a full batch at once', async () => {
    const config = codecsSchema.parse({ timeoutMs: 3000, sandbox: { batchDelayMs: 60, maxBatch: 8 } });
    const registry = new CodecRegistry({ baseDir: FIXTURES, config });
    try {
      const d = device(js('ttn-v2.js'));
      await registry.prepare([d]);
      await registry.decode(d, Buffer.from([1]), uplink());
      let t = performance.now();
      expect(await registry.decode(d, Buffer.from([1]), uplink())).toMatchObject({ data: { count: 1 } });
      expect(performance.now() - t).toBeGreaterThanOrEqual(55);
      t = performance.now();
      const full = await Promise.all(
        Array.from({ length: 8 }, () => registry.decode(d, Buffer.from([1, 2]), uplink())),
      );
      full.forEach((r) => expect(r).toMatchObject({ data: { count: 2 } }));
      expect(performance.now() - t).toBeLessThan(55);
    } finally {
      await registry.close();
    }
  });
});
