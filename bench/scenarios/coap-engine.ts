/**
 * CPU cost per exchange of the CoAP engine and gateway in-process (no sockets): a CON POST with a 20-byte
 * payload from 100 devices goes through parsing, dedup, options, identity, the raw codec, the envelope and a
 * null publisher, and its ACK is encoded. Measured in CPU time, so other load on the machine matters little.
 */
import { randomUUID } from 'node:crypto';
import { Code, DEFAULT_TRANSMISSION, MessageType, Option } from '../../src/coap/constants.js';
import { CoapEndpoint } from '../../src/coap/endpoint.js';
import { DedupCache } from '../../src/coap/dedup.js';
import { encodeMessage, type OptionEntry } from '../../src/coap/message.js';
import rawCodec from '../../codecs/raw/index.js';
import { toDevice } from '../../src/devices/device.js';
import { MemoryRegistry } from '../../src/devices/memory-registry.js';
import { Downloads } from '../../src/gateway/downloads.js';
import { Gateway, type GatewayDeps } from '../../src/gateway/gateway.js';
import { uplinkMessageId } from '../../src/gateway/uplink-id.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import { NullPublisher } from '../../src/publish/stream.js';
import { compileTopic } from '../../src/publish/topic.js';
import type { Peer } from '../../src/transport/peer.js';
import type { Scenario } from '../lib/context.js';
import { MemoryDedupStore } from '../../src/state/memory-dedup-store.js';

class SinkPeer implements Peer {
  readonly transport = 'coap' as const;
  nextMessageId = 0;
  sent = 0;
  constructor(
    readonly key: string,
    readonly address: string,
    readonly port: number,
  ) {}
  send(): void {
    this.sent++;
  }
}

/** What a variant of the measurement adds: request options, and layers handed to the gateway. */
export interface EngineVariant {
  /** Options every request carries besides Uri-Path and Uri-Query (e.g. Accept). */
  options?: OptionEntry[];
  /** Makes the layers the gateway is given (its uplink responder and routes), before the gateway is made. */
  layers?(parts: {
    registry: MemoryRegistry;
    metrics: ReturnType<typeof createMetricsRegistry>;
    caps: CapReporter;
  }): Promise<Pick<GatewayDeps, 'responder' | 'routes'>>;
  /** Called after the measurement, e.g. to check the variant did what it should. */
  check?(): void | Promise<void>;
}

export async function engineCostMicros(
  exchanges: number,
  variant: EngineVariant = {},
): Promise<{ cpuMicros: number; wallMicros: number }> {
  const log = silentLogger();
  const metrics = createMetricsRegistry(false);
  const caps = new CapReporter(metrics, log);
  const devices = Array.from({ length: 100 }, (_, i) => toDevice({ id: `dev${i}` }));
  const codec = await rawCodec.create({}, { baseDir: '.' });
  const registry = new MemoryRegistry(devices);
  const layers = await variant.layers?.({ registry, metrics, caps });
  const gateway = new Gateway({
    registry,
    decoder: {
      decode: (_d, b, ctx) => ({
        codec: 'raw',
        data: (codec.decodeUplink(b, ctx) as { data: unknown }).data,
      }),
    },
    publisher: new NullPublisher(),
    downloads: new Downloads({ dir: '.', cacheBytes: 0, maxFileBytes: 1 }, log, () => undefined),
    topic: compileTopic('cellgate/{thing}/{path}'),
    identity: { queryKey: 'id', byAddress: true },
    dedup: new MemoryDedupStore({ maxEntries: 1000, maxBytes: 1 << 20, onCap: () => undefined }),
    exchangeLifetimeMs: 247_000,
    log,
    metrics,
    ...layers,
  });
  const endpoint = new CoapEndpoint(
    {
      transmission: DEFAULT_TRANSMISSION,
      piggybackWindowMs: 1000,
      maxMessageBytes: 1280,
      dedup: { maxEntries: 250_000, maxBytes: 64 * 1024 * 1024 },
      blockwise: {
        maxBodyBytes: 1 << 20,
        preferredBlockSize: 1024,
        maxTransfers: 100,
        maxBytes: 1 << 24,
        lifetimeMs: 1000,
      },
      maxInFlight: 10_000,
    },
    gateway,
    { log, metrics, caps },
  );
  const peers = devices.map(
    (_, i) => new SinkPeer(`udp:10.0.${i >> 8}.${i & 255}:5683`, `10.0.0.${i}`, 5683),
  );
  const payload = Buffer.alloc(20, 0x61);
  const datagram = (i: number, mid: number) =>
    encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: mid,
      token: Buffer.from([1, 2, 3, 4]),
      options: [[Option.URI_PATH, 't'], [Option.URI_QUERY, `id=dev${i}`], ...(variant.options ?? [])],
      payload,
    });
  // Datagrams are fresh Buffers each time, as from a socket.
  const templates = peers.map((_, i) => datagram(i, 0));
  const run = (n: number, offset: number) => {
    for (let k = 0; k < n; k++) {
      const i = k % 100;
      const d = Buffer.allocUnsafe(templates[i].length);
      templates[i].copy(d);
      const mid = (offset + Math.floor(k / 100)) & 0xffff;
      d[2] = mid >> 8;
      d[3] = mid & 0xff;
      endpoint.receive(d, peers[i]);
    }
  };
  run(200_000, 0); // warm up the JIT
  await new Promise((r) => setImmediate(r)); // let work the warm-up started (e.g. cache fills) finish
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  run(exchanges, 5000);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  endpoint.close();
  await variant.check?.();
  const sent = peers.reduce((a, p) => a + p.sent, 0);
  if (sent < exchanges) throw new Error(`only ${sent} answers for ${exchanges + 200_000} requests`);
  return { cpuMicros: (cpu.user + cpu.system) / exchanges, wallMicros: (wall * 1000) / exchanges };
}

/** Heap bytes per dedup entry holding a typical piggybacked ACK, measured, next to what the cap charges. */
export function dedupEntryBytes(n = 200_000): { measured: number; accounted: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const cache = new DedupCache(n, Number.MAX_SAFE_INTEGER, 247_000, 145_000, () => undefined);
  const keys = Array.from({ length: 100 }, (_, i) => `udp:10.0.0.${i}:5683`);
  for (let i = 0; i < n; i++) {
    const key = keys[i % 100];
    const mid = Math.floor(i / 100);
    cache.add(key, mid, true, Date.now());
    cache.setResponse(
      key,
      mid,
      encodeMessage({
        type: MessageType.ACK,
        code: Code.CHANGED,
        messageId: i & 0xffff,
        token: Buffer.from([1, 2, 3, 4]),
      }),
    );
  }
  gc?.();
  const after = process.memoryUsage();
  const measured = (after.heapUsed - before.heapUsed + after.external - before.external) / n;
  return { measured: Math.round(measured), accounted: Math.round(cache.byteSize / n) };
}

/**
 * CPU per uplink of the envelope's derived `messageId` (SHA-256 over the request's identity and a 20-byte
 * body), next to a random UUID (what it replaced) measured the same way in the same run.
 */
export function messageIdMicros(n = 1_000_000): { derived: number; random: number } {
  const u = {
    peerKey: 'dtls:AbCdEfGhIjKl',
    deviceId: 'meter-000001',
    method: Code.POST,
    path: 'telemetry',
    coapMessageId: 0,
    token: Buffer.from('0102030405060708', 'hex'),
  };
  const body = Buffer.alloc(20, 0x61);
  const time = (f: (i: number) => string) => {
    let sink = 0;
    for (let i = 0; i < n / 10; i++) sink += f(i).length;
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) sink += f(i).length;
    const cpu = process.cpuUsage(cpu0);
    if (sink === 0) throw new Error('nothing computed');
    return (cpu.user + cpu.system) / n;
  };
  const derived = time((i) => {
    u.coapMessageId = i & 0xffff;
    return uplinkMessageId(u, body);
  });
  const random = time(() => randomUUID());
  return { derived, random };
}

export const coapEngine: Scenario = {
  name: 'engine',
  description: 'CPU per exchange in-process (CoAP engine + gateway + null sink, no sockets)',
  async run(ctx) {
    const d = dedupEntryBytes();
    const r = await engineCostMicros(ctx.quick ? 300_000 : 2_000_000);
    ctx.log(`engine: ${r.cpuMicros.toFixed(2)} µs CPU per exchange (${r.wallMicros.toFixed(2)} µs wall)`);
    ctx.log(
      `dedup: ${d.measured} bytes per remembered exchange measured, ${d.accounted} charged against coap.dedup.maxBytes`,
    );
    const id = messageIdMicros(ctx.quick ? 200_000 : 1_000_000);
    ctx.log(
      `messageId: ${id.derived.toFixed(2)} µs CPU derived vs ${id.random.toFixed(2)} µs random, ` +
        `${((100 * (id.derived - id.random)) / r.cpuMicros).toFixed(1)} % of an exchange`,
    );
    ctx.record('engine', { ...r, dedupEntryBytes: d, messageIdMicros: id });
  },
};
