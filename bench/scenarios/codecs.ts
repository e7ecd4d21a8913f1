/**
 * Decode cost per message of each built-in codec, through the codec registry as the gateway calls it.
 *
 * In-process codecs (raw, json, cbor, senml, protobuf) are timed in a tight loop. The `js` codec runs scripts
 * in sandbox worker threads: the benchmark feeds it the way the gateway does (bursts of uplinks per event
 * loop turn) and reports the gateway thread's cost per message (event-loop active time / messages), which is
 * what lowers the gateway's throughput, and the worker's CPU, which runs on another core.
 *
 *   npm run bench -- [--quick] codecs
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeCbor } from '../../src/codecs/cbor-json.js';
import type { UplinkContext } from '../../src/codecs/codec.js';
import { CodecRegistry } from '../../src/codecs/registry.js';
import type { CodecSpec } from '../../src/config/codecs.js';
import type { Device } from '../../src/devices/device.js';
import type { BenchContext, Scenario } from '../lib/context.js';
import { coapLoad, spawnGateway, writeGatewayConfig, type LoadResult } from '../lib/gateway.js';
import { cpuSeconds, stop, waitForCoap } from '../lib/proc.js';

const PROTO = `syntax = "proto3";
message Telemetry {
  uint32 battery_mv = 1;
  sint32 temperature_centi = 2;
  uint32 humidity = 3;
  uint64 counter = 4;
  repeated float samples = 5;
}
`;

// A formatter in the style of device-repository scripts: type-length-value records, bit arithmetic.
const FORMATTER = `
var TYPES = { 1: 'temperature', 2: 'humidity', 4: 'light', 5: 'motion', 6: 'co2', 7: 'vdd' };
function s16(v) { return v & 0x8000 ? v - 0x10000 : v; }
function decodeUplink(input) {
  var b = input.bytes, data = {}, warnings = [];
  for (var i = 0; i < b.length; ) {
    var type = b[i++];
    switch (type) {
      case 1: data.temperature = s16((b[i] << 8) | b[i + 1]) / 10; i += 2; break;
      case 2: data.humidity = b[i]; i += 1; break;
      case 4: data.light = (b[i] << 8) | b[i + 1]; i += 2; break;
      case 5: data.motion = b[i]; i += 1; break;
      case 6: data.co2 = (b[i] << 8) | b[i + 1]; i += 2; break;
      case 7: data.vdd = (b[i] << 8) | b[i + 1]; i += 2; break;
      default: warnings.push('unknown type ' + type + ' (' + (TYPES[type] || '?') + ')'); i = b.length;
    }
  }
  return { data: data, warnings: warnings };
}
`;

// For the whole-gateway run: the load generator's 20-byte payload read as a fixed-layout frame.
const FRAME_FORMATTER = `
function decodeUplink(input) {
  var b = input.bytes;
  if (b.length < 20) return { errors: ['frame of ' + b.length + ' bytes, expected 20'] };
  function u16(i) { return (b[i] << 8) | b[i + 1]; }
  return {
    data: {
      counter: u16(0),
      temperature: Math.round((u16(2) / 100 - 273.15) * 100) / 100,
      humidity: b[4],
      pressure: u16(6) / 10,
      batteryMv: u16(8),
      flags: b[10],
      readings: [u16(12), u16(14), u16(16), u16(18)]
    }
  };
}
`;

const DEVICES = 100;

const READING = { temperature: 21.5, humidity: 48, battery: 3.61, status: 'ok', counter: 1234 };
const SENML = [
  { bn: 'urn:dev:imei:490154203237518:', bt: 1.7e9, n: 'temperature', u: 'Cel', v: 21.5 },
  { n: 'humidity', u: '%RH', v: 48 },
  { n: 'battery', u: 'V', v: 3.61 },
  { n: 'status', vs: 'ok' },
];

function senmlCbor(): Buffer {
  const labels: Record<string, number> = { bn: -2, bt: -3, n: 0, u: 1, v: 2, vs: 3 };
  return encodeCbor(SENML.map((r) => new Map(Object.entries(r).map(([k, v]) => [labels[k], v]))));
}

/** CPU time of the calling thread in ns (Linux), or null where the kernel does not say. */
function threadCpuNs(): number | null {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    return Number.isFinite(ns) && ns > 0 ? ns : null;
  } catch {
    return null;
  }
}

function ctx(contentFormat?: number): UplinkContext {
  return {
    deviceId: 'bench',
    thing: 'bench',
    path: 'up',
    contentFormat,
    transport: 'coap',
    receivedAt: Date.now(),
  };
}

interface Case {
  readonly label: string;
  readonly codec: CodecSpec | undefined;
  readonly payload: Buffer;
  readonly contentFormat?: number;
}

export interface CodecBenchResult {
  readonly label: string;
  readonly nsPerMessage: number;
  readonly bytes: number;
}

export interface SandboxBenchResult {
  readonly messages: number;
  readonly perSecond: number;
  /** Gateway-thread (event loop) time per message, µs. */
  readonly gatewayUsPerMessage: number;
  /** Worker CPU per message, µs (process CPU minus the gateway thread's). */
  readonly workerUsPerMessage: number;
}

function timeSync(registry: CodecRegistry, d: Device, c: Case, seconds: number): number {
  const context = ctx(c.contentFormat);
  // Warm up, then time rounds until the time is up.
  for (let i = 0; i < 20_000; i++) registry.decode(d, c.payload, context);
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 10_000; i++) {
      const r = registry.decode(d, c.payload, context);
      if ((r as { error?: string }).error) throw new Error(`${c.label}: ${(r as { error: string }).error}`);
    }
    n += 10_000;
    now = performance.now();
  }
  return ((now - start) * 1e6) / n;
}

/**
 * Feeds the js codec like the gateway: `burst` uplinks per event-loop turn, at most `window` unanswered (the
 * network and the devices' retransmission timers bound what is in flight), until `total` are answered.
 */
async function timeSandbox(
  registry: CodecRegistry,
  d: Device,
  payload: Buffer,
  total: number,
  burst: number,
  window = 2048,
) {
  const context = ctx();
  let submitted = 0;
  let answered = 0;
  let failed = 0;
  let waiting = false;
  const cpu0 = process.cpuUsage();
  const thread0 = threadCpuNs();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      waiting = false;
      for (let k = 0; k < burst && submitted < total && submitted - answered < window; k++, submitted++)
        void (registry.decode(d, payload, context) as Promise<{ error?: string }>).then(onResult);
      if (submitted < total && !waiting) {
        waiting = true;
        setImmediate(pump);
      }
    };
    const onResult = (r: { error?: string }): void => {
      if (r.error) failed++;
      if (++answered === total) resolve();
    };
    pump();
  });
  const wallMs = performance.now() - t0;
  const thread1 = threadCpuNs();
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  if (failed) throw new Error(`js: ${failed} of ${total} decodes failed`);
  // The gateway thread's own CPU time where the kernel tells it, else its event loop's active time.
  const gatewayUs =
    thread0 !== null && thread1 !== null ? (thread1 - thread0) / 1000 / total : (elu.active * 1000) / total;
  const processUs = (cpu.user + cpu.system) / total;
  return {
    messages: total,
    perSecond: Math.round((total / wallMs) * 1000),
    gatewayUsPerMessage: gatewayUs,
    workerUsPerMessage: Math.max(0, processUs - gatewayUs),
  };
}

export async function runCodecBench(
  seconds = 1,
  out: (line: string) => void = console.log,
): Promise<{ codecs: CodecBenchResult[]; js: SandboxBenchResult }> {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-bench-codecs-'));
  writeFileSync(join(dir, 'telemetry.proto'), PROTO);
  writeFileSync(join(dir, 'formatter.js'), FORMATTER);
  const registry = new CodecRegistry({ baseDir: dir });
  try {
    const protobuf: CodecSpec = {
      name: 'protobuf',
      options: { proto: 'telemetry.proto', type: 'Telemetry' },
    };
    const proto = await registry.encodeDownlink(
      { id: 'p', thing: 'p', ips: [], codec: protobuf },
      { batteryMv: 3610, temperatureCenti: 2150, humidity: 48, counter: 1234, samples: [1.5, 2.5, 3.5] },
      { deviceId: 'p', thing: 'p', accept: undefined },
    );
    if (proto.bytes === null) throw new Error(proto.error);
    const tlv = Buffer.from([
      0x01, 0x00, 0xd7, 0x02, 0x30, 0x04, 0x00, 0x27, 0x05, 0x06, 0x06, 0x03, 0x08, 0x07, 0x0e, 0x1a,
    ]);
    const cases: Case[] = [
      { label: 'raw', codec: 'raw', payload: tlv },
      { label: 'json', codec: 'json', payload: Buffer.from(JSON.stringify(READING)) },
      { label: 'cbor', codec: 'cbor', payload: encodeCbor(READING) },
      {
        label: 'senml (JSON)',
        codec: 'senml',
        payload: Buffer.from(JSON.stringify(SENML)),
        contentFormat: 110,
      },
      { label: 'senml (CBOR)', codec: 'senml', payload: senmlCbor(), contentFormat: 112 },
      { label: 'protobuf', codec: protobuf, payload: proto.bytes },
    ];
    const devices = cases.map((c, i): Device => ({ id: `d${i}`, thing: `d${i}`, ips: [], codec: c.codec }));
    const js: Device = {
      id: 'js',
      thing: 'js',
      ips: [],
      codec: { name: 'js', options: { script: 'formatter.js' } },
    };
    const report = await registry.prepare([...devices, js]);
    if (report.failed.length) throw new Error(report.failed.map((f) => f.error).join('; '));

    out('codec decode cost per message (gateway thread)');
    const results: CodecBenchResult[] = [];
    for (let i = 0; i < cases.length; i++) {
      const ns = timeSync(registry, devices[i], cases[i], seconds);
      results.push({ label: cases[i].label, nsPerMessage: ns, bytes: cases[i].payload.length });
      out(
        `  ${cases[i].label.padEnd(14)} ${cases[i].payload.length.toString().padStart(4)} B  ${(ns / 1000).toFixed(2).padStart(7)} µs`,
      );
    }

    // Warm the sandbox, then measure.
    await timeSandbox(registry, js, tlv, 20_000, 64);
    const total = Math.max(50_000, Math.round(100_000 * seconds));
    const sandbox = await timeSandbox(registry, js, tlv, total, 64);
    out(
      `  ${'js (sandbox)'.padEnd(14)} ${tlv.length.toString().padStart(4)} B  ${sandbox.gatewayUsPerMessage.toFixed(2).padStart(7)} µs` +
        ` gateway thread, ${sandbox.workerUsPerMessage.toFixed(2)} µs worker CPU, ${sandbox.perSecond} msg/s`,
    );
    return { codecs: results, js: sandbox };
  } finally {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The CoAP port a gateway started with port 0 reports in its "cellgate listening" log line. */
function listeningPort(child: ChildProcess, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => done(new Error('the gateway did not report its CoAP port')), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString();
      const m = /"coap":"[^"]*:(\d+)"/.exec(buffered);
      if (m) done(null, Number(m[1]));
      else if (buffered.length > 65536) buffered = buffered.slice(-4096);
    };
    const onExit = (): void => done(new Error(`the gateway exited: ${buffered.slice(-500)}`));
    const done = (err: Error | null, port = 0): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      // Keep draining its output so the pipe never fills.
      child.stdout?.resume();
      if (err) reject(err);
      else resolve(port);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * The whole gateway (null sink) under the CoAP load generator, every device on one codec. The gateway takes
 * a free port: fixed ports collide with other programs on shared machines.
 */
async function gatewayRun(
  ctx: BenchContext,
  codec: CodecSpec,
): Promise<LoadResult & { cpuMicros: number; mainThreadMicros: number }> {
  const config = writeGatewayConfig(
    ctx,
    'codecs',
    0,
    DEVICES,
    { type: 'null' },
    { device: { codec }, files: { 'formatter.js': FRAME_FORMATTER }, logLevel: 'info' },
  );
  const server = spawnGateway(ctx, config);
  try {
    const port = await listeningPort(server);
    await waitForCoap(port);
    const cpu0 = cpuSeconds(server.pid);
    const main0 = cpuSeconds(server.pid, server.pid);
    const r = await coapLoad(ctx, port, DEVICES, [
      '--seconds',
      ctx.quick ? '3' : '10',
      '--id-prefix',
      'dev',
      '--warmup',
      '1',
    ]);
    const cpu = cpuSeconds(server.pid) - cpu0;
    const main = cpuSeconds(server.pid, server.pid) - main0;
    const per = (seconds: number) => (r.exchanges ? (seconds * 1e6) / r.exchanges : 0);
    return { ...r, cpuMicros: per(cpu), mainThreadMicros: per(main) };
  } finally {
    await stop(server);
  }
}

function line(name: string, r: LoadResult & { cpuMicros: number; mainThreadMicros: number }): string {
  return (
    `${name.padEnd(22)} ${String(r.rate).padStart(7)}/s  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms` +
    `  errors ${r.errors}  lost ${r.lost}  CPU per exchange ${r.cpuMicros.toFixed(1)} µs` +
    ` (gateway thread ${r.mainThreadMicros.toFixed(1)} µs)`
  );
}

export const codecs: Scenario = {
  name: 'codecs',
  description: 'decode cost per message of each codec; the gateway with the js sandbox vs raw',
  async run(ctx) {
    const r = await runCodecBench(ctx.quick ? 0.3 : 1, (l) => ctx.log(l));
    ctx.record('codecs', r);
    // The same process (gateway thread and sandbox worker) pinned to one core, the load generator on another.
    const raw = await gatewayRun(ctx, 'raw');
    ctx.log(line('gateway, raw codec', raw));
    const js = await gatewayRun(ctx, { name: 'js', options: { script: 'formatter.js' } });
    ctx.log(line('gateway, js codec', js));
    // Throughput on one core is inversely proportional to CPU per exchange; the rate ratio also shows it,
    // but moves with whatever else runs on the machine.
    const ratio = raw.rate ? js.rate / raw.rate : 0;
    const cpuRatio = js.cpuMicros ? raw.cpuMicros / js.cpuMicros : 0;
    const threadRatio = js.mainThreadMicros ? raw.mainThreadMicros / js.mainThreadMicros : 0;
    ctx.log(
      `gateway with js vs raw: ${Math.round(ratio * 100)}% of the exchange rate and ${Math.round(cpuRatio * 100)}% ` +
        `by CPU per exchange with the worker on the gateway's core; ${Math.round(threadRatio * 100)}% by the ` +
        `gateway thread's CPU (the worker on another core)`,
    );
    ctx.record('codecs.gateway', { raw, js, ratio, cpuRatio, threadRatio });
  },
};
