/**
 * Downlinks piggybacked on uplink responses. Every uplink's success response (and `GET /shadow`) carries the
 * thing's pending downlink document — desired state that differs from reported, and queued commands — encoded
 * for the device, with an ETag. The device confirms what it applied by echoing the ETag (ETag option, or
 * `applied=<hex>` in the query) on a later request, or by acknowledging a confirmable response it asked for
 * with `dl=con`: the gateway then writes the delta as `reported` (with the version it was offered at and a
 * clientToken) and marks the commands delivered. Until then the same data is offered again.
 *
 * The pending downlink of a thing is cached (`ThingCache`): an uplink looks it up with one map lookup and
 * answers at once; the stores are read again only after `downlink.cache.ttlMs`, after a change made through
 * this gateway or announced by another replica, or when the device echoes a version the cache does not know.
 */
import { Code, ContentFormat, Option } from '../coap/constants.js';
import { queryValue, text, type CoapResponse, type Exchange } from '../coap/exchange.js';
import { isPromiseLike } from '../codecs/codec.js';
import type { Device } from '../devices/device.js';
import { deviceLogger, type Logger } from '../ops/logger.js';
import { KeyedLogLimit } from '../ops/rate-limit-log.js';
import {
  counterFrom,
  FastHistogram,
  gaugeFrom,
  type CapReporter,
  type MetricsRegistry,
} from '../ops/metrics.js';
import type { Command, CommandStore } from '../state/command-store.js';
import { decodeTag, matchesLastCommand, tagFromHex, type DownlinkTag } from './document.js';
import {
  encodeCbor,
  encodeJson,
  Format,
  formatFor,
  type DownlinkCodecs,
  type EncodedDownlink,
} from './encoding.js';
import {
  mergeSection,
  shadowDelta,
  stateBytes,
  type JsonObject,
  type ShadowState,
  type ShadowUpdate,
  type UpdateAnswer,
} from './shadow-document.js';
import type { ShadowSource } from './shadow-source.js';
import { ThingCache, type BuiltDocument, type ThingEntry } from './thing-cache.js';

export interface DownlinkOptions {
  /** How long a thing's cached downlink is used before the stores are read again. */
  ttlMs: number;
  maxPerResponse: number;
  cache: { maxEntries: number; maxBytes: number };
  /** Settles once the stores' change feed is listening. */
  listening?: () => Promise<void>;
}

export interface DownlinkDeps {
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
  /** The device codecs (the codec registry); without them, devices that name no format get JSON. */
  codecs?: DownlinkCodecs;
}

/** Uri-Query parameter echoing the ETag of the downlink a device applied (hex). */
export const APPLIED_QUERY = 'applied';
/** Uri-Query `dl=con`: the device asks for its downlink in a confirmable response. */
export const DELIVERY_QUERY = 'dl';
export const CONFIRMED_DELIVERY = 'con';

/** A read that failed is tried again after this long, not after the whole TTL. */
const RETRY_AFTER_FAILURE_MS = 1000;
/** An echoed version the cache does not know makes it read again, at most this often. */
const MIN_RELOAD_MS = 1000;
const FAILURE_LOG_INTERVAL_MS = 10_000;
const MAX_CLIENT_TOKEN_BYTES = 64;

const VALID_NO_CACHE = 0;

/** The device that sent a request, or why it is not accepted (the gateway's identity rule). */
export type IdentifyRequest = (ex: Exchange) => Device | string;

/** A pending downlink for a raw UDP reply. */
export interface RawDownlink {
  readonly bytes: Buffer;
  /** The downlink tag (as the CoAP ETag): the device echoes it in a confirmation frame. */
  readonly tag: Buffer;
  /** Records that the reply carrying it was sent. */
  offer(): void;
  /** Records that it did not fit the reply (it stays pending). */
  tooLarge(): void;
}

/** A response being prepared: the request, its device, and the document it carries. */
class Reply {
  constructor(
    readonly ex: Exchange,
    readonly device: Device,
    /** The response without a downlink (2.04 for an uplink, 2.05 for GET /shadow). */
    readonly base: CoapResponse,
    readonly get: boolean,
    readonly entry: ThingEntry,
    readonly doc: BuiltDocument,
  ) {}
}

function nonEmpty(o: JsonObject): JsonObject | undefined {
  for (const _ in o) return o;
  return undefined;
}

/** The clientToken of a reported-state write: says who confirmed which version. */
export function clientToken(deviceId: string, version: number): string {
  const token = `cellgate:${version}:${deviceId}`;
  return Buffer.byteLength(token) <= MAX_CLIENT_TOKEN_BYTES
    ? token
    : Buffer.from(token)
        .subarray(0, MAX_CLIENT_TOKEN_BYTES)
        .toString('utf8')
        .replace(/\uFFFD+$/, '');
}

/** The tag a request echoes: its ETag option (uplinks) or `applied=<hex>` in its query. */
function echoedTag(ex: Exchange, etagOption: boolean): Buffer | undefined {
  const q = queryValue(ex.query, APPLIED_QUERY);
  if (q !== undefined) return tagFromHex(q) ?? Buffer.alloc(0);
  return etagOption ? ex.request.opaque(Option.ETAG) : undefined;
}

function firstBlock(ex: Exchange): boolean {
  const b2 = ex.request.uint(Option.BLOCK2);
  return b2 === undefined || b2 >> 4 === 0;
}

function suppresses2xx(ex: Exchange): boolean {
  const nr = ex.request.uint(Option.NO_RESPONSE);
  return nr !== undefined && (nr & 2) !== 0;
}

export class Downlinks {
  readonly cache: ThingCache;
  private readonly log: Logger;
  private readonly codecs: DownlinkCodecs | undefined;
  /** Encode failures are logged once a minute per device. */
  private readonly encodeFailureLog: KeyedLogLimit;
  private readonly loadSeconds: FastHistogram;
  private lastFailureLog = 0;
  private failuresSinceLog = 0;

  // Plain-number counters, exposed at scrape time.
  private readonly responses = {
    attached: 0,
    nothing_pending: 0,
    not_acceptable: 0,
    not_modified: 0,
    deferred: 0,
  };
  private readonly confirmations = { state: 0, commands: 0, delivery_ack: 0, unmatched: 0, invalid: 0 };
  private readonly commandEvents = { queued: 0, sent: 0, delivered: 0, unreadable: 0 };
  private readonly sourceOps = {
    read_ok: 0,
    read_failed: 0,
    report_ok: 0,
    report_conflict: 0,
    report_failed: 0,
    codec_fallback: 0,
  };

  constructor(
    private readonly opts: DownlinkOptions,
    readonly shadows: ShadowSource,
    readonly commands: CommandStore,
    deps: DownlinkDeps,
  ) {
    this.log = deps.log;
    this.codecs = deps.codecs;
    this.encodeFailureLog = new KeyedLogLimit(60_000, 10_000, () => deps.caps.hit('log_limit_keys'));
    this.cache = new ThingCache(opts.cache.maxEntries, opts.cache.maxBytes, (cap, n) =>
      deps.caps.hit(cap, n),
    );
    const drop = (thing: string) => this.cache.peek(thing)?.invalidate();
    shadows.onChange(drop);
    commands.onChange(drop);
    const r = deps.metrics;
    counterFrom(
      r,
      'cellgate_downlink_responses_total',
      'Responses by downlink outcome.',
      () => this.responses,
      'outcome',
    );
    counterFrom(
      r,
      'cellgate_downlink_confirmations_total',
      'Downlink confirmations by kind (state, commands, delivery_ack) or why they matched nothing.',
      () => this.confirmations,
      'kind',
    );
    counterFrom(
      r,
      'cellgate_downlink_commands_total',
      'Command events: queued, sent (offered in a response), delivered, expired, unreadable.',
      () => ({ ...this.commandEvents, expired: this.commands.expiredCount }),
      'event',
    );
    counterFrom(
      r,
      'cellgate_downlink_source_operations_total',
      'Shadow and queue reads and reported-state writes by result.',
      () => this.sourceOps,
      'result',
    );
    gaugeFrom(
      r,
      'cellgate_downlink_cache_entries',
      'Things whose pending downlink is cached.',
      () => this.cache.size,
    );
    gaugeFrom(r, 'cellgate_downlink_cache_bytes', 'Bytes of cached downlinks.', () => this.cache.byteSize);
    this.loadSeconds = new FastHistogram(
      r,
      'cellgate_downlink_read_duration_seconds',
      'Time to read a thing’s shadow and command queue from their stores.',
      [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
  }

  /**
   * Waits (at most `maxWaitMs`) until changes made by other replicas reach this one, so a gateway that starts
   * serving does not miss them. Resolves either way: without the feed the cache TTL still bounds staleness.
   */
  async ready(maxWaitMs: number): Promise<void> {
    if (!this.opts.listening) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.opts.listening(), new Promise<void>((r) => (timer = setTimeout(r, maxWaitMs)))]);
    clearTimeout(timer);
  }

  /**
   * The path the downlink layer serves, for the gateway's routes: `GET /shadow`. `identify` names the device
   * of a request as the gateway does for uplinks.
   */
  routes(identify: IdentifyRequest): Record<string, (ex: Exchange) => void> {
    return { shadow: (ex) => this.serveShadow(ex, identify) };
  }

  // The gateway's uplink responder: downlinks piggybacked on uplink responses.

  /** Sends an uplink's success response with the thing's pending downlink. */
  respondToUplink(ex: Exchange, device: Device, base: CoapResponse): void {
    if (suppresses2xx(ex)) return ex.respond(base);
    this.serve(ex, device, base, false);
  }

  /** A later block of an uplink's response asked of this replica: the same document, from the shared store. */
  respondAgain(ex: Exchange, device: Device, base: CoapResponse): void {
    this.serve(ex, device, base, false);
  }

  /**
   * Starts reading a thing's pending downlink when its uplink arrives, so the read (a store round trip when
   * the entry is cold, as after a session moved to this replica) runs while the uplink is published rather
   * than after it. The reply joins the same read.
   */
  prepareUplink(ex: Exchange, device: Device): void {
    if (suppresses2xx(ex)) return;
    const entry = this.cache.get(device.thing);
    if (!this.isFresh(entry, Date.now(), undefined)) void this.load(entry);
  }

  /** `GET /shadow`: the device pulls its pending downlink; 2.03 Valid when its ETag is still current. */
  private serveShadow(ex: Exchange, identify: IdentifyRequest): void {
    if (ex.method !== Code.GET) return ex.respond(text(Code.METHOD_NOT_ALLOWED, 'GET /shadow only'));
    const device = identify(ex);
    if (typeof device === 'string') return ex.respond(text(Code.UNAUTHORIZED, device));
    this.serve(ex, device, { code: Code.CONTENT }, true);
  }

  private serve(ex: Exchange, device: Device, base: CoapResponse, get: boolean): void {
    const now = Date.now();
    const entry = this.cache.get(device.thing);
    let tag = echoedTag(ex, !get);
    if (tag !== undefined && entry.lastConfirmed !== undefined && tag.equals(entry.lastConfirmed))
      tag = undefined;
    if (this.isFresh(entry, now, tag)) return this.reply(ex, device, base, get, entry, tag, now);
    this.load(entry)
      .then(() => this.reply(ex, device, base, get, entry, tag, Date.now()))
      .catch((err: unknown) => {
        this.log.error({ err, thing: entry.thing }, 'downlink: reply failed');
        if (!ex.responded) ex.respond(get ? text(Code.INTERNAL_SERVER_ERROR, 'Internal error') : base);
      });
  }

  private isFresh(entry: ThingEntry, now: number, tag: Buffer | undefined): boolean {
    if (entry.reporting > 0) return true;
    if (entry.staleAt <= now) return false;
    if (tag === undefined || entry.loadedAt + MIN_RELOAD_MS > now) return true;
    // A version the cache does not know: the device saw a newer document (through another replica).
    const t = decodeTag(tag);
    if (t === undefined) return true;
    return (
      t.version === (entry.shadow?.version ?? 0) >>> 0 ||
      (entry.offered !== undefined && t.version === entry.offered.version >>> 0)
    );
  }

  /** Reads the thing's shadow and commands (one read at a time per thing; never rejects). */
  private load(entry: ThingEntry): Promise<void> {
    return (entry.loading ??= this.read(entry).finally(() => (entry.loading = undefined)));
  }

  private async read(entry: ThingEntry): Promise<void> {
    const started = performance.now();
    const now = Date.now();
    const generation = entry.generation;
    const [shadow, commands] = await Promise.allSettled([
      this.shadows.get(entry.thing),
      this.commands.pending(entry.thing, now),
    ]);
    this.loadSeconds.observe((performance.now() - started) / 1000);
    let ok = true;
    if (shadow.status === 'fulfilled') {
      this.sourceOps.read_ok++;
      // A reported-state write that began meanwhile is already in the entry; the read may predate it.
      if (entry.reporting === 0) this.setShadow(entry, shadow.value);
    } else {
      ok = false;
      this.failed('shadow read failed', entry.thing, shadow.reason);
    }
    if (commands.status === 'fulfilled') {
      entry.commands = commands.value;
    } else {
      ok = false;
      this.failed('command queue read failed', entry.thing, commands.reason);
    }
    if (!ok) this.sourceOps.read_failed++;
    entry.doc = undefined;
    entry.loadedAt = now;
    if (entry.generation !== generation) entry.staleAt = Number.NEGATIVE_INFINITY;
    else entry.staleAt = now + (ok ? this.opts.ttlMs : RETRY_AFTER_FAILURE_MS);
    entry.measure(entry.shadow ? stateBytes(entry.shadow) : 0);
    this.cache.resize(entry);
  }

  private setShadow(entry: ThingEntry, shadow: ShadowState | undefined): void {
    entry.shadow = shadow;
    entry.delta = shadow ? nonEmpty(shadowDelta(shadow.desired, shadow.reported)) : undefined;
    if (entry.offered && shadow && entry.offered.version > shadow.version) entry.offered = undefined;
  }

  private failed(what: string, thing: string, err: unknown): void {
    this.failuresSinceLog++;
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.log.warn(
      { thing, err: (err as Error).message, failures: this.failuresSinceLog },
      `downlink: ${what}`,
    );
    this.lastFailureLog = now;
    this.failuresSinceLog = 0;
  }

  private reply(
    ex: Exchange,
    device: Device,
    base: CoapResponse,
    get: boolean,
    entry: ThingEntry,
    tag: Buffer | undefined,
    now: number,
  ): void {
    if (tag !== undefined) this.confirm(entry, device, tag, now);
    let doc = entry.doc;
    if (doc === undefined || doc.validUntil <= now) doc = this.build(entry, now);
    if (!get && doc.empty) {
      this.responses.nothing_pending++;
      return ex.respond(base);
    }
    const r = new Reply(ex, device, base, get, entry, doc);
    const format = formatFor(ex.accept);
    if (format === Format.JSON) return this.send(r, this.json(r), ContentFormat.JSON);
    if (format === Format.CBOR) {
      const bytes = doc.cbor ?? this.cacheEncoding(entry, doc, (doc.cbor = encodeCbor(doc.value)));
      return this.send(r, bytes, ContentFormat.CBOR);
    }
    this.encodeWithCodec(r);
  }

  private build(entry: ThingEntry, now: number): BuiltDocument {
    const doc = entry.build(now, this.opts.maxPerResponse, (id) => {
      this.commandEvents.unreadable++;
      this.log.warn({ thing: entry.thing, command: id }, 'downlink: command data is not JSON; skipped');
    });
    this.cache.resize(entry);
    return doc;
  }

  private json(r: Reply): Buffer {
    const doc = r.doc;
    return doc.json ?? this.cacheEncoding(r.entry, doc, (doc.json = encodeJson(doc.value)));
  }

  private cacheEncoding(entry: ThingEntry, doc: BuiltDocument, bytes: Buffer): Buffer {
    doc.encodedBytes += bytes.length;
    if (entry.doc === doc) this.cache.resize(entry);
    return bytes;
  }

  private encodeWithCodec(r: Reply): void {
    const { device, ex } = r;
    let out: EncodedDownlink | Promise<EncodedDownlink> | undefined;
    try {
      out = this.codecs?.encodeDownlink(device, r.doc.value, {
        deviceId: device.id,
        thing: device.thing,
        accept: ex.accept,
      });
    } catch (err) {
      this.encodeFailed(r, (err as Error)?.message ?? String(err));
      out = undefined;
    }
    if (out === undefined) return this.fallback(r);
    if (!isPromiseLike(out)) return this.sendEncoded(r, out);
    out.then(
      (o) => this.sendEncoded(r, o),
      (err: unknown) => {
        this.encodeFailed(r, (err as Error)?.message ?? String(err));
        this.fallback(r);
      },
    );
  }

  /** The device codec could not encode the document: a warning, once a minute per device at most. */
  private encodeFailed(r: Reply, error: string, codec?: string): void {
    const held = this.encodeFailureLog.take(r.device.id);
    if (held === undefined) return;
    deviceLogger(this.log, r.device).warn(
      {
        codec,
        err: error,
        version: r.doc.value.version,
        commands: r.doc.value.commands?.length,
        sent: r.ex.accept === undefined ? 'json' : 'nothing',
        suppressed: held || undefined,
      },
      r.ex.accept === undefined
        ? 'downlink: the device codec could not encode the document; sent JSON instead'
        : 'downlink: the device codec could not encode the document; the downlink stays pending',
    );
  }

  private sendEncoded(r: Reply, out: EncodedDownlink): void {
    if (out.bytes === null) {
      if (!out.unsupported) this.encodeFailed(r, out.error ?? 'the codec returned no bytes', out.codec);
      return this.fallback(r);
    }
    const accept = r.ex.accept;
    if (accept !== undefined && out.contentFormat !== accept) return this.notAcceptable(r);
    this.send(r, out.bytes, out.contentFormat);
  }

  /** The codec has no encoding: JSON when the device named no format, otherwise nothing is acceptable. */
  private fallback(r: Reply): void {
    if (r.ex.accept !== undefined) return this.notAcceptable(r);
    if (this.codecs) this.sourceOps.codec_fallback++;
    this.send(r, this.json(r), ContentFormat.JSON);
  }

  private notAcceptable(r: Reply): void {
    this.responses.not_acceptable++;
    // The uplink itself was accepted: it is answered without the downlink, which stays pending.
    if (!r.get) return r.ex.respond(r.base);
    r.ex.respond(text(Code.NOT_ACCEPTABLE, 'Accept 50 (JSON), 60 (CBOR) or the device codec’s format'));
  }

  private send(r: Reply, payload: Buffer, contentFormat: number | undefined): void {
    const { ex, doc } = r;
    if (r.get && this.stillValid(ex, doc.etag)) {
      this.responses.not_modified++;
      return ex.respond({ code: Code.VALID, etag: doc.etag, maxAge: VALID_NO_CACHE });
    }
    if (ex.acknowledged && payload.length > ex.blockSize && firstBlock(ex)) {
      // The request was already acknowledged, so this would be a separate response carrying Block2, which
      // common device stacks (libcoap) cannot take. An uplink is answered without it (the downlink stays
      // pending for the next exchange); GET /shadow is asked to retry, and will be answered from the cache.
      this.responses.deferred++;
      if (!r.get) return ex.respond(r.base);
      return ex.respond(text(Code.SERVICE_UNAVAILABLE, 'Downlink being fetched, retry', 1));
    }
    if (firstBlock(ex)) this.offer(r.entry, doc, Date.now());
    const res: CoapResponse = { code: r.base.code, payload, contentFormat, etag: doc.etag };
    if (r.get) res.maxAge = VALID_NO_CACHE;
    // Confirmed delivery: a document that fits one message goes in a confirmable response whose ACK confirms
    // it. A larger one goes block-wise as usual (an ACK of its first block would not say it arrived whole)
    // and is confirmed by echoing its ETag.
    if (
      !doc.empty &&
      payload.length <= ex.blockSize &&
      queryValue(ex.query, DELIVERY_QUERY) === CONFIRMED_DELIVERY
    ) {
      res.confirmable = true;
      res.onDelivered = (delivered) => {
        if (!delivered) return;
        this.confirmations.delivery_ack++;
        this.confirm(r.entry, r.device, doc.etag, Date.now());
      };
    }
    this.responses.attached++;
    ex.respond(res);
  }

  private stillValid(ex: Exchange, etag: Buffer): boolean {
    for (const t of ex.request.opaques(Option.ETAG)) if (t.equals(etag)) return true;
    return false;
  }

  /** Records what a response offers: commands become `sent`; the delta is remembered for its confirmation. */
  private offer(entry: ThingEntry, doc: BuiltDocument, now: number): void {
    const desired = doc.value.desired;
    if (desired !== undefined && entry.offered?.delta !== desired)
      entry.offered = { version: doc.value.version ?? 0, delta: desired };
    const ids = doc.commandIds;
    if (ids.length === 0) return;
    this.commandEvents.sent += ids.length;
    for (const c of entry.commands) {
      if (!ids.includes(c.id)) continue;
      c.state = 'sent';
      c.sentAt = now;
      c.attempts++;
    }
    this.commands
      .markSent(entry.thing, ids, now)
      .catch((err: unknown) => this.failed('markSent failed', entry.thing, err));
  }

  /** The device confirmed the document tagged `tag`: write the delta as reported, deliver the commands. */
  private confirm(entry: ThingEntry, device: Device, tagBytes: Buffer, now: number): void {
    const tag = decodeTag(tagBytes);
    if (tag === undefined) {
      this.confirmations.invalid++;
      return;
    }
    let matched = false;
    const shadow = entry.shadow;
    // Desired state is reported only when the confirmed document carried it (the tag says so).
    if (tag.desired && entry.offered && tag.version === entry.offered.version >>> 0) {
      this.report(entry, device, entry.offered.version, entry.offered.delta);
      matched = true;
    } else if (tag.desired && shadow && entry.delta && tag.version === shadow.version >>> 0) {
      this.report(entry, device, shadow.version, entry.delta);
      matched = true;
    }
    if (tag.commands > 0) matched = this.deliver(entry, tag, now) || matched;
    if (matched) entry.lastConfirmed = tagBytes;
    else if (tag.commands > 0 || tag.desired) this.confirmations.unmatched++;
  }

  private deliver(entry: ThingEntry, tag: DownlinkTag, now: number): boolean {
    let last = -1;
    for (const c of entry.commands) if (matchesLastCommand(c.id, tag)) last = c.id;
    if (last < 0) return false;
    this.confirmations.commands++;
    entry.commands = entry.commands.filter((c: Command) => c.id > last);
    entry.doc = undefined;
    this.commands.markDelivered(entry.thing, last, now).then(
      (n) => (this.commandEvents.delivered += n),
      (err: unknown) => {
        // Not recorded: read the queue again, so the commands are offered (and can be confirmed) again.
        entry.lastConfirmed = undefined;
        entry.invalidate();
        this.failed('markDelivered failed', entry.thing, err);
      },
    );
    return true;
  }

  /** Writes the confirmed delta as reported state; the entry holds the result at once. */
  private report(entry: ThingEntry, device: Device, version: number, delta: JsonObject): void {
    this.confirmations.state++;
    const shadow = entry.shadow;
    if (shadow) {
      const reported: JsonObject = shadow.reported ? structuredClone(shadow.reported) : {};
      mergeSection(reported, {}, delta, 0);
      entry.shadow = { ...shadow, reported };
      entry.delta = nonEmpty(shadowDelta(shadow.desired, reported));
    }
    entry.offered = undefined;
    entry.doc = undefined;
    entry.reporting++;
    const update: ShadowUpdate = {
      state: { reported: delta },
      version,
      clientToken: clientToken(device.id, version),
    };
    this.writeReport(entry, update, true);
  }

  private writeReport(entry: ThingEntry, update: ShadowUpdate, retryOnConflict: boolean): void {
    this.shadows.update(entry.thing, update).then(
      (answer: UpdateAnswer) => {
        this.sourceOps.report_ok++;
        entry.reporting--;
        const s = entry.shadow;
        if (s && s.version < answer.version) entry.shadow = { ...s, version: answer.version };
        entry.doc = undefined;
      },
      (err: { status?: number }) => {
        if (retryOnConflict && err.status === 409) {
          // The shadow changed since the offer (e.g. new desired state): report on top of the current version.
          this.sourceOps.report_conflict++;
          this.shadows.get(entry.thing).then(
            (current) => {
              if (!current) return this.reportFailed(entry, err);
              this.writeReport(entry, { ...update, version: current.version }, false);
            },
            (e: unknown) => this.reportFailed(entry, e),
          );
          return;
        }
        this.reportFailed(entry, err);
      },
    );
  }

  private reportFailed(entry: ThingEntry, err: unknown): void {
    this.sourceOps.report_failed++;
    entry.reporting--;
    // The device's next echo of the same tag must count again.
    entry.lastConfirmed = undefined;
    // Read the shadow again: the delta is offered again and confirmed again (the device skips a version it
    // already applied, so nothing is applied twice).
    entry.invalidate();
    this.failed('reported-state write failed', entry.thing, err);
  }

  /**
   * The thing's pending downlink for a raw UDP reply, encoded by the device's codec (`encodeDownlink`; JSON when
   * it has none or it fails), or undefined when nothing is pending. Call `offer()` once it is sent: commands
   * become `sent` and the delta is remembered for its confirmation.
   */
  async pendingFor(device: Device): Promise<RawDownlink | undefined> {
    const entry = this.cache.get(device.thing);
    if (!this.isFresh(entry, Date.now(), undefined)) await this.load(entry);
    const now = Date.now();
    let doc = entry.doc;
    if (doc === undefined || doc.validUntil <= now) doc = this.build(entry, now);
    if (doc.empty) {
      this.responses.nothing_pending++;
      return undefined;
    }
    const built = doc;
    let encoded: EncodedDownlink | undefined;
    try {
      encoded = await this.codecs?.encodeDownlink(device, built.value, {
        deviceId: device.id,
        thing: device.thing,
        accept: undefined,
      });
    } catch {
      encoded = undefined;
    }
    let bytes = encoded?.bytes ?? null;
    if (bytes === null) {
      if (this.codecs) this.sourceOps.codec_fallback++;
      bytes = built.json ?? this.cacheEncoding(entry, built, (built.json = encodeJson(built.value)));
    }
    return {
      bytes,
      tag: built.etag,
      offer: () => {
        this.responses.attached++;
        this.offer(entry, built, Date.now());
      },
      tooLarge: () => this.responses.deferred++,
    };
  }

  /** A raw UDP device confirmed the downlink tagged `tag` (by its next uplink or a confirmation frame). */
  async confirmFrom(device: Device, tag: Buffer): Promise<void> {
    const entry = this.cache.get(device.thing);
    if (entry.lastConfirmed !== undefined && tag.equals(entry.lastConfirmed)) return;
    if (!this.isFresh(entry, Date.now(), tag)) await this.load(entry);
    this.confirm(entry, device, tag, Date.now());
  }

  // The admin API's operations: each makes this gateway's cache read the thing again.

  async getShadow(thing: string): Promise<ShadowState | undefined> {
    return this.shadows.get(thing);
  }

  async updateShadow(thing: string, update: ShadowUpdate): Promise<UpdateAnswer> {
    try {
      return await this.shadows.update(thing, update);
    } finally {
      this.cache.peek(thing)?.invalidate();
    }
  }

  async deleteShadow(thing: string): Promise<{ version: number; timestamp: number }> {
    try {
      return await this.shadows.delete(thing);
    } finally {
      this.cache.peek(thing)?.invalidate();
    }
  }

  async enqueue(thing: string, data: string, ttlMs: number): Promise<Command> {
    const c = await this.commands.enqueue(thing, data, ttlMs, Date.now());
    this.commandEvents.queued++;
    this.cache.peek(thing)?.invalidate();
    return c;
  }

  listCommands(thing: string): Promise<Command[]> {
    return this.commands.list(thing, Date.now());
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.commands.close();
    await this.shadows.close();
  }
}
