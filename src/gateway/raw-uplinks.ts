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
import { randomUUID } from 'node:crypto';
import { BoundedMap } from '../collections/bounded-map.js';
import type { UdpConfig } from '../config/udp.js';
import { patternBytes, type IdentitySource } from '../config/udp.js';
import { isPromiseLike, type DecodeResult, type UplinkDecoder } from '../codecs/codec.js';
import type { Device } from '../devices/device.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { deviceLogger, type Logger } from '../ops/logger.js';
import type { CapReporter } from '../ops/metrics.js';
import { KeyedLogLimit } from '../ops/rate-limit-log.js';
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
import type { Envelope } from '../publish/envelope.js';
import { uplinkMessageId } from './uplink-id.js';

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

const EMPTY = Buffer.alloc(0);
const NO_TOKEN = EMPTY;

/** One raw uplink on its way through the steps. */
class Uplink {
  sim: SimSession | undefined = undefined;
  found: Identified | undefined = undefined;
  payload: Buffer = EMPTY;
  hash = '';
  counter: number | undefined = undefined;
  counterBytes: 0 | 2 | 4 = 0;
  claim: CounterClaim | undefined = undefined;
  decoded: DecodeResult | undefined = undefined;
  /** Recorded in the recent-uplinks store (no counter). */
  recorded = false;
  envelope: Envelope | undefined = undefined;
  /** A store failed: the datagram is dropped and counted. */
  readonly fail: (err: unknown) => void;

  constructor(
    readonly d: RawDatagram,
    onError: (err: unknown) => void,
  ) {
    this.fail = (err) => {
      d.outcome('store_failed');
      onError(err);
    };
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
  /** By device; the oldest is forgotten when full. */
  readonly lastReplies: BoundedMap<string, LastReply>;
  readonly offers: BoundedMap<string, Buffer>;
  /** Store failures are logged once per interval, saying how many were held back. */
  private readonly errorLog = new KeyedLogLimit(ERROR_LOG_INTERVAL_MS, 1);
  private isoMs = -1;
  private iso = '';
  private readonly onError = (err: unknown) => this.logError(err);

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
    this.lastReplies = new BoundedMap({
      maxEntries: c.reply.maxCached,
      onCap: () => deps.caps.hit('udp_replies'),
    });
    this.offers = new BoundedMap({
      maxEntries: c.reply.maxCached,
      onCap: () => deps.caps.hit('udp_downlink_offers'),
    });
  }

  handleDatagram(d: RawDatagram): void {
    const u = new Uplink(d, this.onError);
    try {
      const sims = this.deps.sims;
      if (sims === undefined) return this.withSim(u);
      const s = sims.get(plainAddress(d.address));
      if (isPromiseLike(s))
        s.then((sim) => {
          u.sim = sim;
          this.withSim(u);
        }, u.fail);
      else {
        u.sim = s;
        this.withSim(u);
      }
    } catch (err) {
      u.fail(err);
    }
  }

  private logError(err: unknown): void {
    const held = this.errorLog.take('store');
    if (held === undefined) return;
    this.deps.log.warn(
      { err: (err as Error).message, suppressed: held || undefined },
      'raw udp: uplink dropped, state store failed',
    );
  }

  /** Runs a step on a value that may be a promise: at once when it is not. */
  private step<T>(u: Uplink, v: T | PromiseLike<T>, next: (u: Uplink, v: T) => void): void {
    if (!isPromiseLike(v)) return next.call(this, u, v);
    v.then((x) => {
      try {
        next.call(this, u, x);
      } catch (err) {
        u.fail(err);
      }
    }, u.fail);
  }

  private withSim(u: Uplink): void {
    this.step(u, this.identify(u.d, u.sim), this.identified);
  }

  private identified(u: Uplink, found: Identified | string | undefined): void {
    const d = u.d;
    if (found === undefined) {
      d.outcome('unknown_device');
      if (this.unknownReply.length) d.reply(this.unknownReply);
      return this.debug(undefined, d, 'raw uplink from an unknown device dropped');
    }
    if (typeof found === 'string') {
      d.outcome('refused');
      return this.debug(undefined, d, `raw uplink refused: ${found}`);
    }
    u.found = found;
    const bytes = d.bytes;
    u.payload = bytes.length > this.payloadStart ? bytes.subarray(this.payloadStart) : EMPTY;
    u.hash = datagramHash(bytes);
    const counter = frameCounter(bytes, this.frameLayout);
    if (counter === undefined) {
      // A frame too short to hold its counter would escape replay protection.
      if (this.frameLayout.counter !== undefined) {
        d.outcome('malformed');
        return this.debug(found.device, d, 'raw uplink too short for its frame counter');
      }
      return this.counted(u);
    }
    u.counter = counter;
    u.counterBytes = this.frameLayout.counter?.bytes ?? 0;
    this.step(u, this.deps.counters.claim(found.device.id, counter, u.hash, this.frameRule), this.claimed);
  }

  private claimed(u: Uplink, claim: CounterClaim): void {
    u.claim = claim;
    if (claim.verdict !== 'new') return this.drop(u, claim.verdict);
    if (u.decoded === undefined) this.counted(u);
    else this.publish(u);
  }

  /** The frame counter (if any) was taken: a confirmation frame, or an uplink to decode. */
  private counted(u: Uplink): void {
    const device = (u.found as Identified).device;
    const d = u.d;
    if (this.isConfirmation(u.payload)) {
      const tag = Buffer.from(u.payload.subarray(this.confirmPrefix.length));
      this.offers.delete(device.id);
      (this.deps.downlinks as RawDownlinkSource).confirmFrom(device, tag).then(() => {
        d.outcome('confirmation');
        this.debug(device, d, 'raw downlink confirmation');
      }, u.fail);
      return;
    }
    const decoded = this.deps.decoder.decode(device, u.payload, {
      deviceId: device.id,
      thing: device.thing,
      path: this.deps.config.path,
      contentFormat: undefined,
      transport: d.listener,
      receivedAt: d.receivedAt,
    });
    this.step(u, decoded, this.decoded);
  }

  private decoded(u: Uplink, decoded: DecodeResult): void {
    u.decoded = decoded;
    if (u.counter !== undefined) return this.publish(u);
    const device = (u.found as Identified).device;
    const c = counterIn(decoded.data, this.deps.config.counter.field, this.codecRule.bits);
    if (c !== undefined) {
      u.counter = c;
      u.counterBytes = this.codecRule.bits === 32 ? 4 : 2;
      return this.step(u, this.deps.counters.claim(device.id, c, u.hash, this.codecRule), this.claimed);
    }
    this.step(u, this.deps.recent.seen(device.id, u.hash, this.deps.config.dedup.windowMs), this.checked);
  }

  private checked(u: Uplink, seen: boolean): void {
    if (seen) return this.drop(u, 'duplicate');
    u.recorded = true;
    this.publish(u);
  }

  private publish(u: Uplink): void {
    const found = u.found as Identified;
    const device = found.device;
    const envelope = this.envelope(u.d, found, u.sim, u.decoded as DecodeResult, u.counter);
    u.envelope = envelope;
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
    this.deps.publisher.publish(message, (err) => {
      try {
        this.published(u, err);
      } catch (e) {
        u.fail(e);
      }
    });
  }

  private published(u: Uplink, err: PublishError | null): void {
    const d = u.d;
    const device = (u.found as Identified).device;
    if (err) {
      // Give the counter (or the duplicate record) back, so the device's retransmission is taken.
      const undo =
        u.claim !== undefined && u.counter !== undefined
          ? this.deps.counters.release(device.id, u.counter, u.hash, u.claim.previous)
          : u.recorded
            ? this.deps.recent.forget(device.id, u.hash)
            : undefined;
      if (isPromiseLike(undo)) undo.then(undefined, (e: unknown) => this.logError(e));
      d.outcome('publish_failed');
      return this.debug(device, d, `raw uplink not published: ${err.message}`);
    }
    d.outcome((u.decoded as DecodeResult).error === undefined ? 'published' : 'decode_failure');
    if (this.deps.log.isLevelEnabled('debug'))
      deviceLogger(this.deps.log, device).debug(
        {
          messageId: u.envelope?.messageId,
          bytes: d.bytes.length,
          counter: u.counter,
          identity: (u.found as Identified).source,
          listener: d.listener,
        },
        'raw uplink published',
      );
    if (this.deps.downlinks !== undefined && this.deps.config.reply.downlinks)
      this.replyWithDownlink(u).catch(u.fail);
    else this.send(u, this.ackFrame(u));
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
  /**
   * The device, a reason to refuse it, or undefined when no source names a known device. Synchronous except
   * when the identity codec runs (it may be asynchronous): then the sources after it continue on its answer.
   */
  private identify(
    d: RawDatagram,
    sim: SimSession | undefined,
    from = 0,
  ): Identified | string | undefined | PromiseLike<Identified | string | undefined> {
    const registry = this.deps.registry;
    for (let i = from; i < this.order.length; i++) {
      const source = this.order[i];
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
        case 'frame': {
          const f = this.byFrame(d);
          if (isPromiseLike(f))
            return f.then((dev) =>
              dev === undefined ? this.identify(d, sim, i + 1) : this.accept(d, dev, source),
            );
          device = f;
          break;
        }
      }
      if (device !== undefined) return this.accept(d, device, source);
    }
    return undefined;
  }

  private accept(d: RawDatagram, device: Device, source: IdentitySource): Identified | string {
    if (d.deviceId !== undefined && device.id !== d.deviceId)
      return 'the device named is not the one the DTLS session authenticated';
    if (d.deviceId === undefined && device.psk) return 'this device must use DTLS';
    return { device, source };
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

  private byFrame(d: RawDatagram): Device | undefined | PromiseLike<Device | undefined> {
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
    const out = this.deps.decoder.decode(codecDevice, d.bytes, {
      deviceId: '',
      thing: '',
      path: this.deps.config.path,
      contentFormat: undefined,
      transport: d.listener,
      receivedAt: d.receivedAt,
    });
    return isPromiseLike(out) ? out.then((o) => this.named(o)) : this.named(out);
  }

  /** The device an identity codec's answer names (`deviceId`). */
  private named(out: DecodeResult): Device | undefined {
    const data = out.data as { deviceId?: unknown } | null;
    return data !== null && typeof data === 'object' && typeof data.deviceId === 'string'
      ? this.deps.registry.get(data.deviceId)
      : undefined;
  }

  private drop(u: Uplink, verdict: string): void {
    const d = u.d;
    const device = (u.found as Identified).device;
    d.outcome(VERDICT_OUTCOME[verdict] ?? 'replay');
    if (verdict === 'duplicate') {
      // A retransmission of an uplink already taken: the device did not get (or did not wait for) its reply.
      const last = this.lastReplies.get(device.id);
      if (last !== undefined && last.hash === u.hash) d.reply(last.bytes);
    }
    if (this.deps.log.isLevelEnabled('debug'))
      deviceLogger(this.deps.log, device).debug(
        { counter: u.counter, verdict, remote: `${d.address}:${d.port}`, listener: d.listener },
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
      // With a counter, the same id on every replica for the same uplink (as CoAP's: docs/publishing.md);
      // without one, equal bytes may be a new reading, so the id is new.
      messageId:
        counter === undefined
          ? randomUUID()
          : uplinkMessageId(
              {
                peerKey: `raw-counter:${counter}`,
                deviceId: device.id,
                method: 0,
                path: this.deps.config.path,
                coapMessageId: 0,
                token: NO_TOKEN,
              },
              d.bytes,
            ),
      deviceId: device.id,
      thing: device.thing,
      receivedAt: this.isoTime(d.receivedAt),
      path: this.deps.config.path,
      transport: d.listener,
      credential: d.credential,
      pskIdentity: d.pskIdentity,
      fingerprint: d.fingerprint,
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

  /** After a safe uplink: confirms the downlink offered before (next-uplink), then replies with what is pending. */
  private async replyWithDownlink(u: Uplink): Promise<void> {
    const downlinks = this.deps.downlinks as RawDownlinkSource;
    const device = (u.found as Identified).device;
    const reply = this.deps.config.reply;
    if (reply.confirm === 'next-uplink') {
      const offered = this.offers.get(device.id);
      if (offered !== undefined) {
        this.offers.delete(device.id);
        await downlinks.confirmFrom(device, offered).catch((err: unknown) => this.logError(err));
      }
    }
    let frame: Buffer | undefined;
    if (this.downlinkFrame.carriesDownlink) {
      const pending = await downlinks.pendingFor(device).catch((err: unknown) => {
        this.logError(err);
        return undefined;
      });
      if (pending !== undefined) {
        const f = this.downlinkFrame.render({
          counter: u.counter ?? 0,
          counterBytes: u.counterBytes,
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
    this.send(u, frame ?? this.ackFrame(u));
  }

  private ackFrame(u: Uplink): Buffer | undefined {
    if (this.ack.empty) return undefined;
    const f = this.ack.render({ counter: u.counter ?? 0, counterBytes: u.counterBytes });
    return f !== undefined && f.length <= this.deps.config.reply.maxBytes ? f : undefined;
  }

  private send(u: Uplink, frame: Buffer | undefined): void {
    if (frame === undefined) return;
    u.d.reply(frame);
    this.lastReplies.set((u.found as Identified).device.id, { hash: u.hash, bytes: frame });
  }

  /** The receive time as ISO 8601, reused within the same millisecond. */
  private isoTime(ms: number): string {
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      this.iso = new Date(ms).toISOString();
    }
    return this.iso;
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

/**
 * A 64-bit hash of a datagram (two 32-bit FNV-1a lanes with different offsets), in base 36 with the length:
 * tells a retransmission of the same bytes from other bytes. Not a cryptographic hash, and it need not be
 * one: only a sender that already names the device could make a collision, and it would only be told that
 * its uplink was a duplicate.
 */
export function datagramHash(b: Buffer): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (let i = 0; i < b.length; i++) {
    h1 = Math.imul(h1 ^ b[i], 0x01000193);
    h2 = Math.imul(h2 ^ b[i] ^ (i & 0xff), 0x01000193);
  }
  return (h1 >>> 0).toString(36) + '.' + (h2 >>> 0).toString(36) + '.' + b.length.toString(36);
}

/** The frame counter a codec returned: a non-negative integer within the counter's width at `field`. */
function counterIn(data: unknown, field: string, bits: number): number | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const v = (data as Record<string, unknown>)[field];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** bits ? v : undefined;
}
