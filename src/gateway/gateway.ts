/**
 * The gateway: the CoAP endpoint's request handler. Routes reserved paths (`fw/…` downloads,
 * `.well-known/core` discovery, and the routes other parts hand it, such as the downlink layer's `shadow`)
 * and treats a POST or PUT to any other path as an uplink: identity → codec → envelope → publisher. A CON
 * uplink is answered 2.04 only after the publisher accepted the message; a publisher failure is answered
 * 5.03 with Max-Age. Its success response goes through the uplink responder it was given (the downlink
 * layer piggybacks pending downlinks on it).
 */
import { NO_HELD_BODY, NO_TRANSFER } from '../coap/blockwise.js';
import { Code, ContentFormat, MessageType, Option } from '../coap/constants.js';
import { queryValue, text, type CoapResponse, type Exchange, type RequestHandler } from '../coap/exchange.js';
import type { DecodeResult, UplinkDecoder } from '../codecs/codec.js';
import { isPromiseLike } from '../codecs/codec.js';
import type { Device } from '../devices/device.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { deviceLogger, type Logger } from '../ops/logger.js';
import { KeyedLogLimit } from '../ops/rate-limit-log.js';
import { counterFrom, FastHistogram, type MetricsRegistry } from '../ops/metrics.js';
import type { PublishError, Publisher, PublishMessage } from '../publish/publisher.js';
import type { TopicRenderer } from '../publish/topic.js';
import type { DedupStore } from '../state/dedup-store.js';
import type { Downloads } from './downloads.js';
import type { Envelope } from '../publish/envelope.js';
import { identify, type IdentityOptions } from './identity.js';
import { exchangeKey, uplinkMessageId, type UplinkIdentity } from './uplink-id.js';

/** Handles a reserved path. */
export type RouteHandler = (ex: Exchange) => void;

/**
 * What completes an uplink's success response: the downlink layer, which piggybacks the thing's pending
 * downlink on it. The gateway is given one when it is made; without one, the response goes out as it is.
 */
export interface UplinkResponder {
  /** Sends the success response of an uplink. */
  respondToUplink(ex: Exchange, device: Device, response: CoapResponse): void;
  /**
   * Gives an uplink's success response again, for a later Block2 block asked of this replica after block 0
   * came from another (without it, uplink responses have no body to continue: 4.08).
   */
  respondAgain?(ex: Exchange, device: Device, response: CoapResponse): void;
  /**
   * Told of an uplink as soon as its device is known, before it is decoded and published, so that reading
   * the thing's pending downlink from its store overlaps the publish.
   */
  prepareUplink?(ex: Exchange, device: Device): void;
}

/** Answers uplinks with the response as it is. */
const PLAIN_RESPONSES: UplinkResponder = { respondToUplink: (ex, _device, response) => ex.respond(response) };

export interface GatewayDeps {
  /** Told when a per-device log limit forgets a device (its cap on devices bit). */
  onLogCap?: () => void;
  registry: DeviceRegistry;
  decoder: UplinkDecoder;
  publisher: Publisher;
  downloads: Downloads;
  topic: TopicRenderer;
  identity: IdentityOptions;
  /** Remembers block-wise uplinks published, for their last block retransmitted to another replica. */
  dedup: DedupStore;
  /** How long a retransmission can come (EXCHANGE_LIFETIME): how long the dedup store keeps a record. */
  exchangeLifetimeMs: number;
  /** Completes uplink success responses (the downlink layer); by default they go out as they are. */
  responder?: UplinkResponder;
  /** Further reserved paths (no leading slash) and their handlers, e.g. the downlink layer's `shadow`. */
  routes?: Readonly<Record<string, RouteHandler>>;
  log: Logger;
  metrics: MetricsRegistry;
}

const CHANGED: CoapResponse = Object.freeze({ code: Code.CHANGED });

export class Gateway implements RequestHandler {
  private readonly routes = new Map<string, RouteHandler>();
  private readonly outcomes = new Map<string, number>();
  private readonly publishSeconds: FastHistogram;
  /** The last receive time rendered as ISO 8601, reused within the same millisecond. */
  private isoMs = -1;
  private iso = '';
  private readonly responder: UplinkResponder;

  private readonly refusalLog: KeyedLogLimit;
  private readonly decodeFailureLog: KeyedLogLimit;

  constructor(private readonly deps: GatewayDeps) {
    const r = deps.metrics;
    this.refusalLog = new KeyedLogLimit(60_000, 10_000, deps.onLogCap);
    this.decodeFailureLog = new KeyedLogLimit(60_000, 10_000, deps.onLogCap);
    counterFrom(r, 'cellgate_uplinks_total', 'Uplinks by outcome.', () => this.outcomes, 'outcome');
    this.publishSeconds = new FastHistogram(
      r,
      'cellgate_publish_duration_seconds',
      'Time from handing an uplink to the publisher until it was accepted or failed.',
      [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.responder = deps.responder ?? PLAIN_RESPONSES;
    this.routes.set('.well-known/core', (ex) => this.discovery(ex));
    for (const [path, handler] of Object.entries(deps.routes ?? {})) this.routes.set(path, handler);
  }

  private count(outcome: string): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  handle(ex: Exchange): void {
    const path = ex.path;
    const route = this.routes.get(path);
    if (route !== undefined) return route(ex);
    if (path === 'fw' || path.startsWith('fw/')) {
      if (ex.method !== Code.GET) return ex.respond(text(Code.METHOD_NOT_ALLOWED, 'Downloads are read-only'));
      return this.deps.downloads.serve(ex, ex.request.strings(Option.URI_PATH).slice(1));
    }
    if (ex.method === Code.POST || ex.method === Code.PUT) return this.uplink(ex);
    ex.respond(text(Code.METHOD_NOT_ALLOWED, 'Uplinks are POST or PUT'));
  }

  /**
   * A block of a transfer whose start went to another replica (or to a process that ended). Nothing is
   * published from it:
   * - the last block of a Block1 upload: if the dedup store says this very exchange completed and published
   *   an uplink (the replica that had it crashed or lost the flow before its 2.04 reached the device), it is
   *   answered 2.04 again; otherwise 4.08, and the device starts the upload over;
   * - a later Block2 block of an uplink's response: the uplink was published (block 0 carried its 2.04), so
   *   the response is given again — with the downlink layer, the thing's pending document from the shared
   *   store, sliced at the block asked for — or 4.08 when uplink responses carry no body.
   */
  handleOrphanedBlock(ex: Exchange): void {
    const block1 = ex.request.has(Option.BLOCK1);
    const incomplete = () =>
      ex.respond(text(Code.REQUEST_ENTITY_INCOMPLETE, block1 ? NO_TRANSFER : NO_HELD_BODY));
    const isUplink =
      (ex.method === Code.POST || ex.method === Code.PUT) &&
      !this.routes.has(ex.path) &&
      ex.path !== 'fw' &&
      !ex.path.startsWith('fw/');
    if (!isUplink) return incomplete();
    const device = identify(ex, this.deps.registry, this.deps.identity);
    if (typeof device === 'string') return incomplete();
    if (!block1) {
      if (this.responder.respondAgain === undefined) return incomplete();
      return this.responder.respondAgain(ex, device, CHANGED);
    }
    const key = exchangeKey(this.uplinkIdentity(ex, device), ex.payload);
    this.deps.dedup.recall(device.id, key, Date.now()).then((messageId) => {
      if (messageId === undefined) return incomplete();
      this.count('duplicate');
      if (this.deps.log.isLevelEnabled('debug'))
        deviceLogger(this.deps.log, device).debug(
          { messageId, path: ex.path },
          'last block of an upload published before: answered again, not published again',
        );
      this.responder.respondToUplink(ex, device, CHANGED);
    }, incomplete);
  }

  private uplinkIdentity(ex: Exchange, device: Device): UplinkIdentity {
    const msg = ex.request;
    return {
      peerKey: ex.peer.key,
      deviceId: device.id,
      method: ex.method,
      path: ex.path,
      coapMessageId: msg.messageId,
      token: msg.token,
    };
  }

  private uplink(ex: Exchange): void {
    const device = identify(ex, this.deps.registry, this.deps.identity);
    if (typeof device === 'string') {
      this.count('unauthorized');
      this.logRefusal(ex, device);
      return ex.respond(text(Code.UNAUTHORIZED, device));
    }
    const refusal = this.deps.decoder.refuses?.(device, ex.path, ex.contentFormat);
    if (refusal !== undefined) {
      this.count('unsupported_content_format');
      return ex.respond(text(Code.UNSUPPORTED_CONTENT_FORMAT, refusal));
    }
    if (ex.request.has(Option.IF_MATCH)) {
      // An uplink creates a new message: there is no current representation for If-Match to match.
      return ex.respond(text(Code.PRECONDITION_FAILED, 'If-Match cannot match an uplink'));
    }
    this.responder.prepareUplink?.(ex, device);
    const result = this.deps.decoder.decode(device, ex.payload, {
      deviceId: device.id,
      thing: device.thing,
      path: ex.path,
      contentFormat: ex.contentFormat,
      transport: ex.peer.transport,
      receivedAt: ex.receivedAt,
    });
    if (isPromiseLike(result)) result.then((r) => this.publish(ex, device, r));
    else this.publish(ex, device, result);
  }

  /**
   * A refused uplink at info, with the id the device claimed (or its address when it claimed none): once a
   * minute per claimed id at most, saying how many were held back.
   */
  private logRefusal(ex: Exchange, reason: string): void {
    const peer = ex.peer;
    const claimedId = queryValue(ex.query, this.deps.identity.queryKey) ?? peer.deviceId;
    const held = this.refusalLog.take(claimedId ?? peer.pskIdentity ?? peer.address);
    if (held === undefined) return;
    this.deps.log.info(
      {
        claimedId,
        pskIdentity: peer.pskIdentity,
        remote: `${peer.address}:${peer.port}`,
        path: ex.path,
        suppressed: held || undefined,
      },
      `uplink refused: ${reason}`,
    );
  }

  /** A payload the device's codec could not decode (published all the same), once a minute per device. */
  private logDecodeFailure(device: Device, path: string, decoded: DecodeResult): void {
    const held = this.decodeFailureLog.take(device.id);
    if (held === undefined) return;
    deviceLogger(this.deps.log, device).info(
      { codec: decoded.codec, path, decodeError: decoded.error, suppressed: held || undefined },
      'uplink not decoded; published with decodeError',
    );
  }

  private publish(ex: Exchange, device: Device, decoded: DecodeResult): void {
    if (decoded.error !== undefined) {
      this.count('decode_error');
      this.logDecodeFailure(device, ex.path, decoded);
    }
    const peer = ex.peer;
    const msg = ex.request;
    const uplink = this.uplinkIdentity(ex, device);
    const id = uplinkMessageId(uplink, ex.payload);
    const envelope: Envelope = {
      messageId: id,
      deviceId: device.id,
      thing: device.thing,
      receivedAt: this.isoTime(ex.receivedAt),
      path: ex.path,
      method: ex.method === Code.PUT ? 'PUT' : 'POST',
      transport: peer.transport,
      credential: peer.credential,
      pskIdentity: peer.pskIdentity,
      fingerprint: peer.fingerprint,
      remote: { address: peer.address, port: peer.port },
      coap: {
        type: msg.type === MessageType.CON ? 'CON' : 'NON',
        messageId: msg.messageId,
        token: msg.token.toString('hex'),
        blocks: ex.blocks > 1 ? ex.blocks : undefined,
      },
      contentFormat: ex.contentFormat ?? null,
      codec: decoded.codec,
      raw: ex.payload.toString('base64'),
      decoded: decoded.data ?? null,
      decodeError: decoded.error,
      decodeWarnings: decoded.warnings && decoded.warnings.length ? decoded.warnings : undefined,
    };
    const message: PublishMessage = {
      id,
      topic: this.deps.topic({
        thing: device.thing,
        deviceId: device.id,
        path: ex.path,
        pskIdentity: peer.pskIdentity,
      }),
      deviceId: device.id,
      thing: device.thing,
      envelope,
    };
    const started = performance.now();
    this.deps.publisher.publish(message, (err: PublishError | null) => {
      this.publishSeconds.observe((performance.now() - started) / 1000);
      if (this.deps.log.isLevelEnabled('debug'))
        this.logUplink(device, message, ex.payload.length, decoded, err);
      if (err) {
        this.count('publish_failed');
        return ex.respond(
          text(Code.SERVICE_UNAVAILABLE, 'Publish failed, retry later', err.retryAfterSeconds),
        );
      }
      this.count('published');
      if (ex.blocks === 1) return this.responder.respondToUplink(ex, device, CHANGED);
      // A block-wise upload: recorded before the 2.04 leaves, so its last block, retransmitted to another
      // replica, is recognised there (see handleOrphanedBlock).
      const key = exchangeKey(uplink, msg.payload);
      this.deps.dedup
        .remember(device.id, key, id, this.deps.exchangeLifetimeMs, Date.now())
        .finally(() => this.responder.respondToUplink(ex, device, CHANGED));
    });
  }

  /** One debug line per uplink, with the device's context. */
  private logUplink(
    device: Device,
    msg: PublishMessage,
    bytes: number,
    decoded: DecodeResult,
    err: PublishError | null,
  ): void {
    const e = msg.envelope;
    const fields = {
      messageId: msg.id,
      topic: msg.topic,
      path: e.path,
      bytes,
      blocks: e.coap?.blocks,
      codec: decoded.codec,
      decodeError: decoded.error,
      remote: `${e.remote.address}:${e.remote.port}`,
    };
    const log = deviceLogger(this.deps.log, device);
    if (err)
      log.debug(
        { ...fields, err: err.message, retryAfterSeconds: err.retryAfterSeconds },
        'uplink not published',
      );
    else log.debug(fields, 'uplink published');
  }

  private isoTime(ms: number): string {
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      this.iso = new Date(ms).toISOString();
    }
    return this.iso;
  }

  private discovery(ex: Exchange): void {
    if (ex.method !== Code.GET) return ex.respond(text(Code.METHOD_NOT_ALLOWED, 'Discovery is GET only'));
    this.deps.downloads.list(64).then(
      (files) => {
        const links = files.map(
          (f) => `</fw/${encodeURIComponent(f.name)}>;ct=${ContentFormat.OCTET_STREAM};sz=${f.size}`,
        );
        for (const p of this.routes.keys()) if (p !== '.well-known/core') links.push(`</${p}>`);
        ex.respond({
          code: Code.CONTENT,
          payload: Buffer.from(links.join(',')),
          contentFormat: ContentFormat.LINK_FORMAT,
        });
      },
      () =>
        ex.respond({
          code: Code.CONTENT,
          payload: Buffer.alloc(0),
          contentFormat: ContentFormat.LINK_FORMAT,
        }),
    );
  }
}
