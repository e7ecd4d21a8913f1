/**
 * Raw UDP uplinks: the raw endpoint's handler. One datagram is one uplink through identity → frame counter
 * (or duplicate check) → codec → envelope → publisher, then an optional reply: the acknowledgement frame, or a
 * pending downlink, sent only once the uplink is safe (published, or in the outbox) — the rule CoAP's 2.04
 * follows. There is no error channel: what is not published is dropped and counted by outcome.
 *
 * Identity (`udp.identity`, first match wins): the DTLS session's device; the device listed with the source IP;
 * the SIM the carrier's RADIUS accounting put on the source IP, matched by IMSI, IMEI or MSISDN; a device id in
 * the frame (`udp.frame.id`) or returned by a codec (`udp.frame.codec`).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { UdpConfig } from '../config/udp.js';
import { patternBytes, type IdentitySource } from '../config/udp.js';
import type { DecodeResult, UplinkDecoder } from '../codecs/codec.js';
import type { Device } from '../devices/device.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { deviceLogger, type Logger } from '../ops/logger.js';
import type { CapReporter } from '../ops/metrics.js';
import type { PublishError, Publisher, PublishMessage } from '../publish/publisher.js';
import type { TopicRenderer } from '../publish/topic.js';
import type { CounterClaim, FrameCounterStore } from '../state/frame-counters.js';
import type { RecentUplinkStore } from '../state/recent-uplinks.js';
import type { SimSession, SimTable } from '../state/sim-table.js';
import { plainAddress } from '../transport/udp.js';
import type { CounterRule } from '../udp/counter.js';
import type { DatagramOutcome, RawDatagram, RawUplinkHandler } from '../udp/endpoint.js';
import { frameCounter, frameId, payloadOffset } from '../udp/frame.js';
import { ReplyTemplate } from '../udp/reply.js';
import type { Envelope } from './envelope.js';

/** The downlink layer as raw UDP uses it (satisfied by Downlinks). */
export interface RawDownlinkSource {
  pendingFor(
    device: Device,
  ): Promise<{ bytes: Buffer; tag: Buffer; offer(): void; tooLarge(): void } | undefined>;
  confirmFrom(device: Device, tag: Buffer): Promise<void>;
}

export interface RawUplinkDeps {
  config: UdpConfig;
  registry: DeviceRegistry;
  decoder: UplinkDecoder;
  publisher: Publisher;
  topic: TopicRenderer;
  counters: FrameCounterStore;
  recent: RecentUplinkStore;
  /** The RADIUS IP → SIM table, when the RADIUS listener runs. */
  sims?: SimTable;
  downlinks?: RawDownlinkSource;
  log: Logger;
  caps: CapReporter;
}

/** A downlink tag's length (as the CoAP ETag). */
const TAG_BYTES = 8;
const ERROR_LOG_INTERVAL_MS = 30_000;

interface Identified {
  device: Device;
  source: IdentitySource;
}

/** The last reply to a device, sent again to a retransmission of the same uplink. */
interface LastReply {
  hash: string;
  bytes: Buffer;
}

const VERDICT_OUTCOME: Record<string, DatagramOutcome> = {
  duplicate: 'duplicate',
  replay: 'replay',
  reset: 'counter_reset',
  gap: 'counter_gap',
  full: 'counter_cap',
};

/** A pseudo-device whose codec is the identity codec (`udp.frame.codec`); the registry caches it like a device. */
function identityCodecDevice(config: UdpConfig): Device | undefined {
  const spec = config.frame.codec;
  return spec === undefined ? undefined : { id: '(frame)', thing: '(frame)', codec: spec, ips: [] };
}

/** A bounded map that forgets its oldest entry when full. */
class BoundedMap<V> {
  private readonly map = new Map<string, V>();

  constructor(
    private readonly max: number,
    private readonly onCap: () => void,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(k: string): V | undefined {
    return this.map.get(k);
  }

  set(k: string, v: V): void {
    if (this.max === 0) return;
    this.map.delete(k);
    if (this.map.size >= this.max) {
      this.map.delete(this.map.keys().next().value as string);
      this.onCap();
    }
    this.map.set(k, v);
  }

  delete(k: string): void {
    this.map.delete(k);
  }
}

export class RawUplinks implements RawUplinkHandler {
  private readonly order: readonly IdentitySource[];
  private readonly frameLayout: UdpConfig['frame'];
  private readonly payloadStart: number;
  private readonly identityDevice: Device | undefined;
  private readonly ack: ReplyTemplate;
  private readonly downlinkFrame: ReplyTemplate;
  private readonly confirmPrefix: Buffer;
  private readonly unknownReply: Buffer;
  private readonly codecRule: CounterRule;
  private readonly frameRule: CounterRule;
  /** Per device: the last reply (for retransmissions) and the downlink offered and not yet confirmed. */
  readonly lastReplies: BoundedMap<LastReply>;
  readonly offers: BoundedMap<Buffer>;
  private lastErrorLog = 0;

  constructor(private readonly deps: RawUplinkDeps) {
    const c = deps.config;
    this.order = c.identity;
    this.frameLayout = c.frame;
    this.payloadStart = payloadOffset(c.frame);
    this.identityDevice = identityCodecDevice(c);
    this.ack = new ReplyTemplate(c.reply.ack);
    this.downlinkFrame = new ReplyTemplate(c.reply.downlink);
    this.confirmPrefix = patternBytes(c.reply.confirmPrefix);
    this.unknownReply = patternBytes(c.unknownDevice.reply);
    this.codecRule = { bits: c.counter.bits, maxGap: c.counter.maxGap };
    this.frameRule = { bits: c.frame.counter?.bytes === 4 ? 32 : 16, maxGap: c.counter.maxGap };
    this.lastReplies = new BoundedMap(c.reply.maxCached, () => deps.caps.hit('udp_replies'));
    this.offers = new BoundedMap(c.reply.maxCached, () => deps.caps.hit('udp_downlink_offers'));
  }

  handleDatagram(d: RawDatagram): void {
    this.uplink(d).catch((err: unknown) => {
      d.outcome('store_failed');
      this.logError(err);
    });
  }

  private logError(err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.deps.log.warn({ err: (err as Error).message }, 'raw udp: uplink dropped, state store failed');
  }

  private async uplink(d: RawDatagram): Promise<void> {
    const sims = this.deps.sims;
    const address = plainAddress(d.address);
    let sim: SimSession | undefined;
    if (sims !== undefined) {
      const s = sims.get(address);
      sim = s instanceof Promise ? await s : s;
    }
    const found = await this.identify(d, sim);
    if (found === undefined) {
      d.outcome('unknown_device');
      if (this.unknownReply.length) d.reply(this.unknownReply);
      this.debug(undefined, d, 'raw uplink from an unknown device dropped');
      return;
    }
    if (typeof found === 'string') {
      d.outcome('refused');
      this.debug(undefined, d, `raw uplink refused: ${found}`);
      return;
    }
    const { device } = found;
    const bytes = d.bytes;
    const payload = bytes.length > this.payloadStart ? bytes.subarray(this.payloadStart) : Buffer.alloc(0);
    const hash = createHash('md5').update(bytes).digest('base64url');
    let counter = frameCounter(bytes, this.frameLayout);
    let counterBytes: 0 | 2 | 4 = counter === undefined ? 0 : (this.frameLayout.counter?.bytes ?? 0);
    let claim: CounterClaim | undefined;
    if (counter !== undefined) {
      claim = await this.deps.counters.claim(device.id, counter, hash, this.frameRule);
      if (claim.verdict !== 'new') return this.drop(d, device, claim.verdict, hash, counter);
    }

    if (this.isConfirmation(payload)) {
      const tag = Buffer.from(payload.subarray(this.confirmPrefix.length));
      this.offers.delete(device.id);
      await this.deps.downlinks?.confirmFrom(device, tag);
      d.outcome('confirmation');
      this.debug(device, d, 'raw downlink confirmation');
      return;
    }

    const decoded = await this.deps.decoder.decode(device, payload, {
      deviceId: device.id,
      thing: device.thing,
      path: this.deps.config.path,
      contentFormat: undefined,
      transport: d.listener,
      receivedAt: d.receivedAt,
    });
    let seen = false;
    if (counter === undefined) {
      const c = counterIn(decoded.data, this.deps.config.counter.field, this.codecRule.bits);
      if (c !== undefined) {
        counter = c;
        counterBytes = this.codecRule.bits === 32 ? 4 : 2;
        claim = await this.deps.counters.claim(device.id, c, hash, this.codecRule);
        if (claim.verdict !== 'new') return this.drop(d, device, claim.verdict, hash, c);
      } else {
        const s = this.deps.recent.seen(device.id, hash, this.deps.config.dedup.windowMs);
        if (s instanceof Promise ? await s : s) return this.drop(d, device, 'duplicate', hash, undefined);
        seen = true;
      }
    }

    const envelope = this.envelope(d, found, sim, decoded, counter);
    const err = await this.publish(device, envelope);
    if (err) {
      // Give the counter (or the duplicate record) back, so the device's retransmission is taken.
      if (claim !== undefined && counter !== undefined)
        await this.deps.counters.release(device.id, counter, hash, claim.previous);
      else if (seen) await this.deps.recent.forget(device.id, hash);
      d.outcome('publish_failed');
      this.debug(device, d, `raw uplink not published: ${err.message}`);
      return;
    }
    d.outcome(decoded.error === undefined ? 'published' : 'decode_failure');
    if (this.deps.log.isLevelEnabled('debug'))
      deviceLogger(this.deps.log, device).debug(
        {
          messageId: envelope.messageId,
          bytes: bytes.length,
          counter,
          identity: found.source,
          listener: d.listener,
        },
        'raw uplink published',
      );
    await this.reply(d, device, hash, counter ?? 0, counterBytes);
  }

  private isConfirmation(payload: Buffer): boolean {
    const p = this.confirmPrefix;
    return (
      p.length > 0 &&
      payload.length === p.length + TAG_BYTES &&
      payload.subarray(0, p.length).equals(p) &&
      this.deps.downlinks !== undefined
    );
  }

  /** The device, a reason to refuse it, or undefined when no source names a known device. */
  private async identify(
    d: RawDatagram,
    sim: SimSession | undefined,
  ): Promise<Identified | string | undefined> {
    const registry = this.deps.registry;
    for (const source of this.order) {
      let device: Device | undefined;
      switch (source) {
        case 'dtls':
          if (d.deviceId === undefined) continue;
          device = registry.get(d.deviceId);
          if (device === undefined) return undefined;
          break;
        case 'ip':
          device = registry.byAddress(plainAddress(d.address));
          break;
        case 'radius':
          device = sim === undefined ? undefined : this.bySim(sim);
          break;
        case 'frame':
          device = await this.byFrame(d);
          break;
      }
      if (device === undefined) continue;
      if (d.deviceId !== undefined && device.id !== d.deviceId)
        return 'the device named is not the one the DTLS session authenticated';
      if (d.deviceId === undefined && device.psk) return 'this device must use DTLS';
      return { device, source };
    }
    return undefined;
  }

  private bySim(sim: SimSession): Device | undefined {
    const r = this.deps.registry;
    if (r.bySubscriber === undefined) return undefined;
    return (
      (sim.imsi !== undefined ? r.bySubscriber('imsi', sim.imsi) : undefined) ??
      (sim.imei !== undefined ? r.bySubscriber('imei', sim.imei) : undefined) ??
      (sim.msisdn !== undefined ? r.bySubscriber('msisdn', sim.msisdn) : undefined)
    );
  }

  private async byFrame(d: RawDatagram): Promise<Device | undefined> {
    const r = this.deps.registry;
    const idField = this.frameLayout.id;
    if (idField !== undefined) {
      const id = frameId(d.bytes, this.frameLayout);
      if (id === undefined) return undefined;
      if (idField.field === 'id') return r.get(id);
      return r.bySubscriber?.(idField.field, id);
    }
    const codecDevice = this.identityDevice;
    if (codecDevice === undefined) return undefined;
    const out = await this.deps.decoder.decode(codecDevice, d.bytes, {
      deviceId: '',
      thing: '',
      path: this.deps.config.path,
      contentFormat: undefined,
      transport: d.listener,
      receivedAt: d.receivedAt,
    });
    const data = out.data as { deviceId?: unknown } | null;
    return data !== null && typeof data === 'object' && typeof data.deviceId === 'string'
      ? r.get(data.deviceId)
      : undefined;
  }

  private drop(
    d: RawDatagram,
    device: Device,
    verdict: string,
    hash: string,
    counter: number | undefined,
  ): void {
    d.outcome(VERDICT_OUTCOME[verdict] ?? 'replay');
    if (verdict === 'duplicate') {
      // A retransmission of an uplink already taken: the device did not get (or did not wait for) its reply.
      const last = this.lastReplies.get(device.id);
      if (last !== undefined && last.hash === hash) d.reply(last.bytes);
    }
    if (this.deps.log.isLevelEnabled('debug'))
      deviceLogger(this.deps.log, device).debug(
        { counter, verdict, remote: `${d.address}:${d.port}`, listener: d.listener },
        'raw uplink dropped',
      );
  }

  private envelope(
    d: RawDatagram,
    found: Identified,
    sim: SimSession | undefined,
    decoded: DecodeResult,
    counter: number | undefined,
  ): Envelope {
    const device = found.device;
    return {
      messageId: randomUUID(),
      deviceId: device.id,
      thing: device.thing,
      receivedAt: new Date(d.receivedAt).toISOString(),
      path: this.deps.config.path,
      transport: d.listener,
      pskIdentity: d.pskIdentity,
      remote: { address: d.address, port: d.port },
      identity: found.source,
      frameCounter: counter,
      imsi: sim?.imsi ?? device.imsi,
      imei: sim?.imei ?? device.imei,
      msisdn: sim?.msisdn ?? device.msisdn,
      contentFormat: null,
      codec: decoded.codec,
      raw: d.bytes.toString('base64'),
      decoded: decoded.data ?? null,
      decodeError: decoded.error,
      decodeWarnings: decoded.warnings && decoded.warnings.length ? decoded.warnings : undefined,
    };
  }

  private publish(device: Device, envelope: Envelope): Promise<PublishError | null> {
    const message: PublishMessage = {
      id: envelope.messageId,
      topic: this.deps.topic({
        thing: device.thing,
        deviceId: device.id,
        path: envelope.path,
        pskIdentity: envelope.pskIdentity,
      }),
      deviceId: device.id,
      thing: device.thing,
      envelope,
    };
    return new Promise((resolve) => this.deps.publisher.publish(message, resolve));
  }

  /** After a safe uplink: confirms the downlink offered before (next-uplink), then sends the reply. */
  private async reply(
    d: RawDatagram,
    device: Device,
    hash: string,
    counter: number,
    counterBytes: 0 | 2 | 4,
  ): Promise<void> {
    const downlinks = this.deps.downlinks;
    const reply = this.deps.config.reply;
    if (downlinks !== undefined && reply.confirm === 'next-uplink') {
      const offered = this.offers.get(device.id);
      if (offered !== undefined) {
        this.offers.delete(device.id);
        await downlinks.confirmFrom(device, offered).catch((err: unknown) => this.logError(err));
      }
    }
    let frame: Buffer | undefined;
    if (downlinks !== undefined && reply.downlinks && this.downlinkFrame.carriesDownlink) {
      const pending = await downlinks.pendingFor(device).catch((err: unknown) => {
        this.logError(err);
        return undefined;
      });
      if (pending !== undefined) {
        const f = this.downlinkFrame.render({
          counter,
          counterBytes,
          tag: pending.tag,
          downlink: pending.bytes,
        });
        if (f !== undefined && f.length <= reply.maxBytes) {
          pending.offer();
          this.offers.set(device.id, pending.tag);
          frame = f;
        } else {
          pending.tooLarge();
          deviceLogger(this.deps.log, device).warn(
            { bytes: pending.bytes.length, maxBytes: reply.maxBytes },
            'raw downlink does not fit the reply (udp.reply.maxBytes); it stays pending',
          );
        }
      }
    }
    if (frame === undefined && !this.ack.empty) {
      const f = this.ack.render({ counter, counterBytes });
      if (f !== undefined && f.length <= reply.maxBytes) frame = f;
    }
    if (frame === undefined) return;
    d.reply(frame);
    this.lastReplies.set(device.id, { hash, bytes: frame });
  }

  private debug(device: Device | undefined, d: RawDatagram, msg: string): void {
    const log = this.deps.log;
    if (!log.isLevelEnabled('debug')) return;
    (device ? deviceLogger(log, device) : log).debug(
      { remote: `${d.address}:${d.port}`, listener: d.listener, bytes: d.bytes.length },
      msg,
    );
  }
}

/** The frame counter a codec returned: a non-negative integer within the counter's width at `field`. */
function counterIn(data: unknown, field: string, bits: number): number | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const v = (data as Record<string, unknown>)[field];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** bits ? v : undefined;
}
