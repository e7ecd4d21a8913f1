/**
 * The CoAP endpoint (RFC 7252 messaging, RFC 7959 block-wise transfer) between a transport and the gateway.
 *
 * One inbound call, `receive(datagram, peer)`, and one outbound handler, `RequestHandler.handle(exchange)`.
 * In order, a datagram goes through: message format checks (RST for a bad CON, silence for the rest),
 * messaging (ping, ACK/RST matching for our separate responses), deduplication (a retransmission gets the
 * cached response and is never handled twice), option checks (4.02 / 5.05 / 4.05), block-wise reassembly
 * (2.31 / 4.08 / 4.13) and then the handler. The response goes back piggybacked on the ACK when the handler
 * answers within the piggyback window, otherwise as an empty ACK followed by a separate CON response that is
 * retransmitted until acknowledged.
 */
import type { Logger } from 'pino';
import type { Peer } from '../transport/peer.js';
import type { CapReporter, MetricsRegistry } from '../ops/metrics.js';
import { blockSize, decodeBlock, encodeBlock, szxForSize, type BlockValue } from './block-option.js';
import { Block1Assembler, Block1Status, Block2Store, NO_HELD_BODY, sliceBlock } from './blockwise.js';
import {
  Code,
  exchangeLifetimeMs,
  MessageType,
  nonLifetimeMs,
  Option,
  type TransmissionParameters,
} from './constants.js';
import { DedupCache, EMPTY_ACKED } from './dedup.js';
import { Fifo } from '../collections/fifo.js';
import type { CoapResponse, Exchange, RequestHandler } from './exchange.js';
import { CoapStats, registerCoapMetrics } from './metrics.js';
import {
  CoapMessage,
  encodeEmpty,
  encodeMessage,
  FormatError,
  parseMessage,
  type OptionEntry,
} from './message.js';
import { checkOptions, type OptionProblem } from './option-checks.js';

export interface EndpointOptions {
  transmission: TransmissionParameters;
  piggybackWindowMs: number;
  maxMessageBytes: number;
  dedup: { maxEntries: number; maxBytes: number; lifetimeMs?: number };
  blockwise: {
    maxBodyBytes: number;
    preferredBlockSize: number;
    maxTransfers: number;
    maxBytes: number;
    lifetimeMs: number;
  };
  /** Cap on exchanges handed to the handler and not yet answered; past it, requests get 5.03. */
  maxInFlight: number;
}

export interface EndpointDeps {
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
}

/** Message types the gateway answers with, by request type. */
const RESPONSE_BUSY_MAX_AGE = 5;

/** A separate CON response waiting for its ACK. */
class Outgoing {
  timer: NodeJS.Timeout | undefined = undefined;
  attempts = 0;
  constructor(
    readonly key: string,
    readonly peer: Peer,
    readonly bytes: Buffer,
    public timeoutMs: number,
    readonly onDelivered: ((delivered: boolean) => void) | undefined,
  ) {}
}

/**
 * A CON exchange waiting for its answer, queued until its piggyback window ends. The exchange lets go of its
 * ticket when answered, so a queued ticket never keeps an answered exchange (and its datagram) alive.
 */
class AckWait {
  constructor(
    public ex: ServerExchange | null,
    readonly deadline: number,
  ) {}
}

class ServerExchange implements Exchange {
  responded = false;
  /** Its place in the piggyback-window queue while unanswered. */
  wait: AckWait | null = null;
  private queryCache: string[] | undefined;
  /** SZX and NUM of the last Block1 block (the final response echoes it), or -1. */
  block1Szx = -1;
  block1Num = 0;
  /** Block2 option of the request, if any. */
  block2: BlockValue | undefined;
  /** Key of this request's URI for block-wise state. */
  blockKey = '';

  constructor(
    readonly endpoint: CoapEndpoint,
    readonly peer: Peer,
    readonly request: CoapMessage,
    readonly method: number,
    readonly path: string,
    readonly payload: Buffer,
    readonly blocks: number,
    readonly receivedAt: number,
  ) {}

  /** An empty ACK was sent: the response will be a separate CON response. */
  emptyAcked = false;

  get query(): readonly string[] {
    return (this.queryCache ??= this.request.strings(Option.URI_QUERY));
  }

  get contentFormat(): number | undefined {
    return this.request.uint(Option.CONTENT_FORMAT);
  }

  get accept(): number | undefined {
    return this.request.uint(Option.ACCEPT);
  }

  get blockSize(): number {
    return blockSize(this.endpoint.responseSzx(this));
  }

  get acknowledged(): boolean {
    return this.emptyAcked;
  }

  respond(response: CoapResponse): void {
    if (this.responded) return;
    this.responded = true;
    this.endpoint.sendResponse(this, response);
  }
}

function isSafeMethod(method: number): boolean {
  return method === Code.GET || method === Code.FETCH;
}

function hasBody(method: number): boolean {
  return method !== Code.GET && method !== Code.DELETE;
}

/**
 * A later block of a transfer that started before: a Block1 block after the first, or a later Block2 block
 * of a response held for a non-idempotent request. A draining endpoint still serves these.
 */
function continuesTransfer(method: number, b1: number | undefined, b2: number | undefined): boolean {
  if (b1 !== undefined) return b1 >> 4 > 0;
  return b2 !== undefined && b2 >> 4 > 0 && !isSafeMethod(method);
}

/** RFC 7967 No-Response: bit 2 suppresses 2.xx, bit 8 4.xx, bit 16 5.xx. */
function suppressed(noResponse: number | undefined, code: number): boolean {
  if (noResponse === undefined || noResponse === 0) return false;
  const cls = code >> 5;
  return (
    (cls === 2 && (noResponse & 2) !== 0) ||
    (cls === 4 && (noResponse & 8) !== 0) ||
    (cls === 5 && (noResponse & 16) !== 0)
  );
}

export class CoapEndpoint {
  private readonly dedup: DedupCache;
  private readonly block1: Block1Assembler;
  private readonly block2: Block2Store;
  private readonly outgoing = new Map<string, Outgoing>();
  /** CON exchanges not answered yet, in the order their piggyback windows end. */
  private readonly awaiting = new Fifo<AckWait>();
  private ackTimer: NodeJS.Timeout | undefined;
  /** How often the piggyback windows are checked: a quarter of the window, at most 25 ms. */
  private readonly ackTickMs: number;
  private readonly conLifetimeMs: number;
  private readonly nonLifetimeMs: number;
  private readonly preferredSzx: number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly caps: CapReporter;
  private closed = false;
  /** Max-Age of the 5.03 given to new requests while draining; -1 while taking new exchanges. */
  private drainMaxAge = -1;

  readonly counters = new CoapStats();
  /** Exchanges handed to the handler and not answered yet. */
  inFlight = 0;

  constructor(
    private readonly opts: EndpointOptions,
    private readonly handler: RequestHandler,
    deps: EndpointDeps,
  ) {
    this.log = deps.log;
    const t = opts.transmission;
    this.conLifetimeMs = opts.dedup.lifetimeMs ?? exchangeLifetimeMs(t);
    this.ackTickMs = Math.max(1, Math.min(25, Math.floor(opts.piggybackWindowMs / 4)));
    this.nonLifetimeMs = Math.min(this.conLifetimeMs, opts.dedup.lifetimeMs ?? nonLifetimeMs(t));
    // The block size must leave room for the header, token and options within one message.
    this.preferredSzx = Math.min(
      szxForSize(opts.blockwise.preferredBlockSize),
      szxForSize(Math.max(16, opts.maxMessageBytes - 64)),
    );
    const caps = deps.caps;
    this.caps = caps;
    this.dedup = new DedupCache(
      opts.dedup.maxEntries,
      opts.dedup.maxBytes,
      this.conLifetimeMs,
      this.nonLifetimeMs,
      (n) => caps.hit('coap_dedup', n),
    );
    this.block1 = new Block1Assembler({ ...opts.blockwise, preferredSzx: this.preferredSzx }, (cap, n) =>
      caps.hit(cap, n),
    );
    this.block2 = new Block2Store(
      opts.blockwise.maxTransfers,
      opts.blockwise.maxBytes,
      opts.blockwise.lifetimeMs,
      (n) => caps.hit('block2_bodies', n),
    );
    this.sweeper = setInterval(() => this.sweep(Date.now()), 1000);
    this.sweeper.unref();
    registerCoapMetrics(deps.metrics, this.counters, {
      dedupHits: () => this.dedup.hits,
      inFlight: () => this.inFlight,
      block1Transfers: () => {
        const b = this.block1;
        return { started: b.started, completed: b.completed, failed: b.failed };
      },
      cacheEntries: () => ({
        dedup: this.dedup.size,
        block1: this.block1.size,
        block2: this.block2.size,
        separate: this.outgoing.size,
      }),
      cacheBytes: () => ({
        dedup: this.dedup.byteSize,
        block1: this.block1.byteSize,
        block2: this.block2.byteSize,
      }),
    });
  }

  get stats(): {
    dedupEntries: number;
    dedupBytes: number;
    block1: number;
    block2: number;
    outgoing: number;
  } {
    return {
      dedupEntries: this.dedup.size,
      dedupBytes: this.dedup.byteSize,
      block1: this.block1.size,
      block2: this.block2.size,
      outgoing: this.outgoing.size,
    };
  }

  private send(peer: Peer, bytes: Buffer): void {
    this.counters.datagramsOut++;
    peer.send(bytes);
  }

  /** Takes one datagram (one CoAP message) from a peer. */
  receive(data: Buffer, peer: Peer): void {
    this.counters.datagramsIn++;
    if (this.closed) return;
    const msg = parseMessage(data);
    if (msg instanceof FormatError) {
      this.counters.rejected[msg.silent ? 'ignored' : 'format_error']++;
      // A message format error in a CON is answered with RST; anything else is ignored (RFC 7252 §4.2, §4.3).
      if (!msg.silent && msg.type === MessageType.CON)
        this.send(peer, encodeEmpty(MessageType.RST, msg.messageId));
      return;
    }
    const type = msg.type;
    if (type === MessageType.ACK || type === MessageType.RST) {
      this.onAckOrReset(msg, peer);
      return;
    }
    if (msg.code === Code.EMPTY) {
      // CoAP ping: an empty CON is answered with RST (§4.3). An empty NON is invalid: ignore it.
      if (type === MessageType.CON) this.send(peer, encodeEmpty(MessageType.RST, msg.messageId));
      else this.counters.rejected.empty_non++;
      return;
    }
    if (!msg.isRequest) {
      // We send no requests, so a response in a CON or NON has no context: reject it.
      this.counters.rejected.unexpected_response++;
      if (type === MessageType.CON) this.send(peer, encodeEmpty(MessageType.RST, msg.messageId));
      return;
    }
    this.onRequest(msg, peer);
  }

  private onAckOrReset(msg: CoapMessage, peer: Peer): void {
    if (msg.type === MessageType.RST && msg.code !== Code.EMPTY) {
      this.counters.rejected.non_empty_rst++;
      return;
    }
    if (msg.isRequest) {
      this.counters.rejected.request_in_ack++;
      return;
    }
    const key = peer.key + '#' + msg.messageId;
    const out = this.outgoing.get(key);
    if (!out) return;
    clearTimeout(out.timer);
    this.outgoing.delete(key);
    out.onDelivered?.(msg.type === MessageType.ACK);
  }

  private onRequest(msg: CoapMessage, peer: Peer): void {
    const now = Date.now();
    const seen = this.dedup.get(peer.key, msg.messageId, now);
    if (seen !== undefined) {
      if (typeof seen === 'string') this.send(peer, Buffer.from(seen, 'latin1'));
      else if (seen === EMPTY_ACKED) this.send(peer, encodeEmpty(MessageType.ACK, msg.messageId));
      // IN_PROGRESS: the response is on its way.
      return;
    }
    const isCon = msg.type === MessageType.CON;
    this.dedup.add(peer.key, msg.messageId, isCon, now);

    const problem = checkOptions(msg);
    if (problem !== undefined) return this.refuse(msg, peer, problem);
    const method = msg.code;

    let payload = msg.payload;
    let blocks = 1;
    let block1: BlockValue | undefined;
    let block2: BlockValue | undefined;
    let blockKey = '';
    let orphaned = false;
    const b1 = msg.uint(Option.BLOCK1);
    const b2 = msg.uint(Option.BLOCK2);
    const path = msg.joined(Option.URI_PATH, '/');
    const size1 = msg.uint(Option.SIZE1);
    if (b1 !== undefined || b2 !== undefined) {
      blockKey = `${peer.key}|${method}|${path}?${msg.joined(Option.URI_QUERY, '&')}`;
    }
    if (this.drainMaxAge >= 0 && !continuesTransfer(method, b1, b2)) {
      this.counters.rejected.draining++;
      return this.answerDirect(msg, peer, Code.SERVICE_UNAVAILABLE, 'Shutting down', [
        [Option.MAX_AGE, this.drainMaxAge],
      ]);
    }
    if (size1 !== undefined && size1 > this.opts.blockwise.maxBodyBytes && hasBody(method)) {
      return this.answerTooLarge(msg, peer, b1);
    }
    if (b1 !== undefined && hasBody(method)) {
      block1 = decodeBlock(b1);
      const r = this.block1.receive(blockKey, block1, payload, size1, now);
      switch (r.status) {
        case Block1Status.CONTINUE:
          return this.answerDirect(msg, peer, Code.CONTINUE, undefined, [
            [Option.BLOCK1, encodeBlock(block1.num, true, r.szx)],
          ]);
        case Block1Status.ORPHANED:
          // The last block of an upload this endpoint holds nothing of: the handler may know it completed.
          if (block1.more || this.handler.handleOrphanedBlock === undefined) {
            return this.answerDirect(msg, peer, Code.REQUEST_ENTITY_INCOMPLETE, r.reason, [
              [Option.BLOCK1, b1],
            ]);
          }
          orphaned = true;
          blocks = block1.num + 1;
          break;
        case Block1Status.INCOMPLETE:
          return this.answerDirect(msg, peer, Code.REQUEST_ENTITY_INCOMPLETE, r.reason, [
            [Option.BLOCK1, b1],
          ]);
        case Block1Status.TOO_LARGE:
          return this.answerTooLarge(msg, peer, b1);
        case Block1Status.BAD_REQUEST:
          return this.answerDirect(msg, peer, Code.BAD_REQUEST, r.reason);
        case Block1Status.COMPLETE:
          payload = r.body as Buffer;
          blocks = r.blocks as number;
          break;
      }
    }
    if (b2 !== undefined) {
      block2 = decodeBlock(b2);
      if (block2.szx === 7) return this.answerDirect(msg, peer, Code.BAD_OPTION, 'BERT is not used over UDP');
      if (block2.num > 0 && !isSafeMethod(method) && !orphaned) {
        // A later block of a response to a non-idempotent request: serve it from the held body; if none is
        // held (block 0 went out from another replica), the handler may be able to give the body again.
        const held = this.block2.get(blockKey, now);
        if (held) {
          return this.answerBlock(msg, peer, held.code, held.body, held.contentFormat, held.etag, block2);
        }
        if (this.handler.handleOrphanedBlock === undefined || b1 !== undefined) {
          return this.answerDirect(msg, peer, Code.REQUEST_ENTITY_INCOMPLETE, NO_HELD_BODY);
        }
        orphaned = true;
      }
    }

    if (this.inFlight >= this.opts.maxInFlight) {
      this.counters.rejected.busy++;
      return this.answerDirect(msg, peer, Code.SERVICE_UNAVAILABLE, 'Busy', [
        [Option.MAX_AGE, RESPONSE_BUSY_MAX_AGE],
      ]);
    }

    const ex = new ServerExchange(this, peer, msg, method, path, payload, blocks, now);
    if (block1) {
      ex.block1Szx = Math.min(block1.szx, this.preferredSzx);
      ex.block1Num = block1.num;
    }
    ex.block2 = block2;
    ex.blockKey = blockKey;
    this.inFlight++;
    try {
      if (orphaned) (this.handler.handleOrphanedBlock as (ex: Exchange) => void)(ex);
      else this.handler.handle(ex);
    } catch (err) {
      this.log.error({ err }, 'request handler failed');
      if (!ex.responded)
        ex.respond({ code: Code.INTERNAL_SERVER_ERROR, payload: Buffer.from('Internal error') });
    }
    if (!ex.responded && isCon) {
      if (this.opts.piggybackWindowMs === 0) this.emptyAck(ex);
      else this.awaitAnswer(ex, now);
    }
  }

  /**
   * Watches a CON exchange the handler has not answered yet: if the piggyback window passes first, it gets an
   * empty ACK. One timer serves all of them: the window is the same for every exchange, so a FIFO of them is
   * in deadline order, and a tick pops those whose window has passed (answered ones are just dropped).
   */
  private awaitAnswer(ex: ServerExchange, now: number): void {
    ex.wait = new AckWait(ex, now + this.opts.piggybackWindowMs);
    this.awaiting.push(ex.wait);
    if (this.ackTimer === undefined) {
      this.ackTimer = setInterval(onAckTick, this.ackTickMs, this);
      this.ackTimer.unref();
    }
  }

  /** Sends empty ACKs to exchanges whose piggyback window has passed. */
  ackTick(): void {
    const now = Date.now();
    const awaiting = this.awaiting;
    for (let w = awaiting.peek(); w !== undefined; w = awaiting.peek()) {
      if (w.ex !== null && w.deadline > now) break;
      awaiting.shift();
      if (w.ex !== null) {
        w.ex.wait = null;
        this.emptyAck(w.ex);
      }
    }
    if (awaiting.length === 0 && this.ackTimer !== undefined) {
      clearInterval(this.ackTimer);
      this.ackTimer = undefined;
    }
  }

  /** Acknowledges a CON request at once with an empty ACK; its response will come separately. */
  private emptyAck(ex: ServerExchange): void {
    if (ex.emptyAcked || this.closed) return;
    ex.emptyAcked = true;
    this.dedup.setEmptyAcked(ex.peer.key, ex.request.messageId);
    this.send(ex.peer, encodeEmpty(MessageType.ACK, ex.request.messageId));
  }

  /** Answers a request whose options or method are wrong; a NON with a bad critical option is rejected. */
  private refuse(msg: CoapMessage, peer: Peer, problem: OptionProblem): void {
    if (problem.rejectsNon && msg.type !== MessageType.CON) {
      this.counters.rejected.bad_option_non++;
      const rst = encodeEmpty(MessageType.RST, msg.messageId);
      this.dedup.setResponse(peer.key, msg.messageId, rst);
      this.send(peer, rst);
      return;
    }
    this.answerDirect(msg, peer, problem.code, problem.diagnostic);
  }

  private answerTooLarge(msg: CoapMessage, peer: Peer, b1: number | undefined): void {
    const options: OptionEntry[] = [[Option.SIZE1, this.opts.blockwise.maxBodyBytes]];
    if (b1 !== undefined) options.push([Option.BLOCK1, b1]);
    this.answerDirect(
      msg,
      peer,
      Code.REQUEST_ENTITY_TOO_LARGE,
      `Body over ${this.opts.blockwise.maxBodyBytes} bytes`,
      options,
    );
  }

  /** Answers a request without the handler (errors, 2.31 Continue), piggybacked or as a NON response. */
  private answerDirect(
    msg: CoapMessage,
    peer: Peer,
    code: number,
    diagnostic: string | undefined,
    options?: OptionEntry[],
  ): void {
    this.reply(msg, peer, code, options, diagnostic ? Buffer.from(diagnostic) : undefined, false);
  }

  /**
   * Answers in the request's own exchange: piggybacked on the ACK of a CON, or as a NON response to a NON.
   * The answer is remembered for retransmissions of the request. A class of response the client declined
   * (No-Response, RFC 7967) is not sent; a CON still gets its empty ACK.
   */
  private reply(
    msg: CoapMessage,
    peer: Peer,
    code: number,
    options: OptionEntry[] | undefined,
    payload: Buffer | undefined,
    /** An empty ACK was already sent for the request. */
    emptyAcked: boolean,
  ): void {
    this.counters.countResponse(msg.code, code);
    const isCon = msg.type === MessageType.CON;
    if (suppressed(msg.uint(Option.NO_RESPONSE), code)) {
      if (isCon) {
        const ack = encodeEmpty(MessageType.ACK, msg.messageId);
        this.dedup.setResponse(peer.key, msg.messageId, ack);
        if (!emptyAcked) this.send(peer, ack);
      }
      return;
    }
    const bytes = encodeMessage({
      type: isCon ? MessageType.ACK : MessageType.NON,
      code,
      messageId: isCon ? msg.messageId : this.nextMid(peer),
      token: msg.token,
      options,
      payload,
    });
    this.dedup.setResponse(peer.key, msg.messageId, bytes);
    this.send(peer, bytes);
  }

  private answerBlock(
    msg: CoapMessage,
    peer: Peer,
    code: number,
    body: Buffer,
    contentFormat: number | undefined,
    etag: Buffer | undefined,
    block2: BlockValue,
  ): void {
    const szx = Math.min(block2.szx, this.preferredSzx);
    const slice = sliceBlock(body, block2.num, szx);
    if (!slice) return this.answerDirect(msg, peer, Code.BAD_OPTION, 'Block2 number past the end');
    const options: OptionEntry[] = [[Option.BLOCK2, encodeBlock(block2.num, slice.more, szx)]];
    if (contentFormat !== undefined) options.push([Option.CONTENT_FORMAT, contentFormat]);
    if (etag) options.push([Option.ETAG, etag]);
    if (msg.has(Option.SIZE2)) options.push([Option.SIZE2, body.length]);
    this.reply(msg, peer, code, options, slice.payload, false);
  }

  private nextMid(peer: Peer): number {
    const mid = peer.nextMessageId & 0xffff;
    peer.nextMessageId = (mid + 1) & 0xffff;
    return mid;
  }

  /** The block size (SZX) a response to this exchange is sliced at: the client's, if smaller than ours. */
  responseSzx(ex: ServerExchange): number {
    const b2 = ex.block2;
    return b2 ? Math.min(b2.szx, this.preferredSzx) : this.preferredSzx;
  }

  /** Sends the handler's response for an exchange. */
  sendResponse(ex: ServerExchange, res: CoapResponse): void {
    this.inFlight--;
    if (ex.wait !== null) {
      ex.wait.ex = null;
      ex.wait = null;
    }
    const msg = ex.request;
    const code = res.code;
    if (this.closed) return;
    let payload = res.payload;
    const options: OptionEntry[] = [];
    if (res.contentFormat !== undefined) options.push([Option.CONTENT_FORMAT, res.contentFormat]);
    if (res.maxAge !== undefined) options.push([Option.MAX_AGE, res.maxAge]);
    if (res.etag) options.push([Option.ETAG, res.etag]);
    if (res.options) for (const o of res.options) options.push(o);
    if (ex.block1Szx >= 0) options.push([Option.BLOCK1, encodeBlock(ex.block1Num, false, ex.block1Szx)]);
    if (payload && payload.length > 0) {
      const b2 = ex.block2;
      const szx = this.responseSzx(ex);
      if (b2 || payload.length > blockSize(szx)) {
        const num = b2 ? b2.num : 0;
        const body = payload;
        const slice = sliceBlock(body, num, szx);
        if (!slice) {
          return this.finish(
            ex,
            { code: Code.BAD_OPTION, payload: Buffer.from('Block2 number past the end') },
            [],
          );
        }
        payload = slice.payload;
        options.push([Option.BLOCK2, encodeBlock(num, slice.more, szx)]);
        if (num === 0 || msg.has(Option.SIZE2)) options.push([Option.SIZE2, body.length]);
        if (slice.more && !isSafeMethod(ex.method)) {
          this.block2.put(
            ex.blockKey || `${ex.peer.key}|${ex.method}|${ex.path}?${msg.joined(Option.URI_QUERY, '&')}`,
            { code, body, contentFormat: res.contentFormat, etag: res.etag },
            Date.now(),
          );
        }
      }
    }
    this.finish(ex, res, options, payload);
  }

  private finish(ex: ServerExchange, res: CoapResponse, options: OptionEntry[], payload = res.payload): void {
    const msg = ex.request;
    const peer = ex.peer;
    const code = res.code;
    const isCon = msg.type === MessageType.CON;
    const separate = res.confirmable === true || (isCon && ex.emptyAcked);
    if (!separate || suppressed(msg.uint(Option.NO_RESPONSE), code)) {
      return this.reply(msg, peer, code, options, payload, ex.emptyAcked);
    }
    this.counters.countResponse(ex.method, code);
    // Separate CON response (RFC 7252 §5.2.2), retransmitted until the peer acknowledges it.
    if (isCon) this.emptyAck(ex);
    const mid = this.nextMid(peer);
    const bytes = encodeMessage({
      type: MessageType.CON,
      code,
      messageId: mid,
      token: msg.token,
      options,
      payload,
    });
    this.counters.separateResponses++;
    const t = this.opts.transmission;
    const timeout = t.ackTimeoutMs * (1 + Math.random() * (t.ackRandomFactor - 1));
    const key = peer.key + '#' + mid;
    const previous = this.outgoing.get(key);
    if (previous) {
      clearTimeout(previous.timer);
      previous.onDelivered?.(false);
    }
    const out = new Outgoing(key, peer, bytes, timeout, res.onDelivered);
    if (this.outgoing.size >= this.opts.maxInFlight) {
      // Too many unacknowledged responses: send once without tracking.
      this.caps.hit('coap_separate_responses');
      this.send(peer, bytes);
      res.onDelivered?.(false);
      return;
    }
    this.outgoing.set(key, out);
    out.timer = setTimeout(onRetransmitTimer, timeout, this, out);
    this.send(peer, bytes);
  }

  /** Retransmits a separate CON response, or gives up after MAX_RETRANSMIT. */
  retransmit(out: Outgoing): void {
    if (this.outgoing.get(out.key) !== out) return;
    if (out.attempts >= this.opts.transmission.maxRetransmit || this.closed) {
      this.outgoing.delete(out.key);
      this.counters.unacknowledged++;
      out.onDelivered?.(false);
      return;
    }
    out.attempts++;
    out.timeoutMs *= 2;
    this.counters.retransmissions++;
    this.send(out.peer, out.bytes);
    out.timer = setTimeout(onRetransmitTimer, out.timeoutMs, this, out);
  }

  /**
   * Stops taking new exchanges: from now on a new request is answered 5.03 with Max-Age `maxAgeSeconds`.
   * Retransmissions still get their cached answers, ACKs still settle separate responses, and block-wise
   * transfers that had started continue, so the exchanges in flight can finish.
   */
  drain(maxAgeSeconds: number): void {
    this.drainMaxAge = maxAgeSeconds;
  }

  get draining(): boolean {
    return this.drainMaxAge >= 0;
  }

  /** No exchange is waiting for the handler and no separate response is waiting for its ACK. */
  get idle(): boolean {
    return this.inFlight === 0 && this.outgoing.size === 0;
  }

  /**
   * Resolves true once idle (and `also()` holds, e.g. the outbox is delivered), or false when `timeoutMs`
   * passes first. Polls; meant for shutdown.
   */
  whenIdle(timeoutMs: number, also: () => boolean = () => true, pollMs = 20): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve) => {
      const check = () => {
        if ((this.idle && also()) || this.closed) return resolve(this.idle && also());
        if (Date.now() >= deadline) return resolve(false);
        setTimeout(check, Math.min(pollMs, Math.max(1, deadline - Date.now())));
      };
      check();
    });
  }

  /** Forgets a peer's separate responses (its DTLS session ended). */
  dropPeer(peer: Peer): void {
    const prefix = peer.key + '#';
    for (const [k, out] of this.outgoing) {
      if (!k.startsWith(prefix)) continue;
      clearTimeout(out.timer);
      this.outgoing.delete(k);
      out.onDelivered?.(false);
    }
  }

  private sweep(now: number): void {
    this.dedup.sweep(now);
    this.block1.sweep(now);
    this.block2.sweep(now);
  }

  /** Stops timers; pending separate responses are abandoned. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    clearInterval(this.ackTimer);
    this.ackTimer = undefined;
    this.awaiting.clear();
    for (const out of this.outgoing.values()) {
      clearTimeout(out.timer);
      out.onDelivered?.(false);
    }
    this.outgoing.clear();
    this.dedup.clear();
    this.block1.clear();
    this.block2.clear();
  }
}

function onAckTick(endpoint: CoapEndpoint): void {
  endpoint.ackTick();
}

function onRetransmitTimer(endpoint: CoapEndpoint, out: Outgoing): void {
  endpoint.retransmit(out);
}
