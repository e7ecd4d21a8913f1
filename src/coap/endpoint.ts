/**
 * The CoAP endpoint (RFC 7252 messaging, RFC 7959 block-wise transfer) between a transport and the gateway.
 *
 * One inbound call, `receive(datagram, peer)`, and one outbound handler, `RequestHandler.handle(exchange)`.
 * In order, a datagram goes through: message format checks (RST for a bad CON, silence for the rest),
 * messaging (ping, ACK/RST matching for our separate responses), deduplication (a retransmission gets the
 * cached response and is never handled twice, dedup.ts), option checks (4.02 / 5.05 / 4.05,
 * option-checks.ts), draining (5.03 to new requests), block-wise transfer (2.31 / 4.08 / 4.13, blockwise.ts),
 * overload (5.03 past the cap on exchanges in flight) and then the handler. The response goes back
 * piggybacked on the ACK when the handler answers within the piggyback window, otherwise as an empty ACK
 * followed by a separate CON response that is retransmitted until acknowledged; a response larger than a
 * block goes out block-wise.
 */
import type { Logger } from 'pino';
import type { Peer } from '../transport/peer.js';
import type { CapReporter, MetricsRegistry } from '../ops/metrics.js';
import { encodeBlock } from './block-option.js';
import { Blockwise, continuesTransfer } from './blockwise.js';
import {
  Code,
  exchangeLifetimeMs,
  MessageType,
  nonLifetimeMs,
  Option,
  type TransmissionParameters,
} from './constants.js';
import { DedupCache, EMPTY_ACKED } from './dedup.js';
import { DeadlineQueue } from '../collections/deadline-queue.js';
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
import { checkOptions, suppressed, type OptionProblem } from './option-checks.js';
import { Reliability } from './reliability.js';
import { AckWait, answered, ServerExchange, type ExchangeOwner } from './server-exchange.js';

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

/** Max-Age (seconds) of the 5.03 answered while too many exchanges are in flight. */
const RESPONSE_BUSY_MAX_AGE = 5;

export class CoapEndpoint implements ExchangeOwner {
  private readonly dedup: DedupCache;
  readonly blockwise: Blockwise;
  /** Separate CON responses waiting for their ACK. */
  private readonly reliability: Reliability;
  /** CON exchanges not answered yet, in the order their piggyback windows end. */
  private readonly unanswered: DeadlineQueue<AckWait>;
  private readonly conLifetimeMs: number;
  private readonly nonLifetimeMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly log: Logger;
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
    this.nonLifetimeMs = Math.min(this.conLifetimeMs, opts.dedup.lifetimeMs ?? nonLifetimeMs(t));
    const caps = deps.caps;
    this.dedup = new DedupCache(
      opts.dedup.maxEntries,
      opts.dedup.maxBytes,
      this.conLifetimeMs,
      this.nonLifetimeMs,
      (n) => caps.hit('coap_dedup', n),
    );
    this.blockwise = new Blockwise(opts.blockwise, opts.maxMessageBytes, (cap, n) => caps.hit(cap, n));
    this.reliability = new Reliability(opts.transmission, opts.maxInFlight, {
      send: (peer, bytes) => this.send(peer, bytes),
      retransmitted: () => this.counters.retransmissions++,
      gaveUp: () => this.counters.unacknowledged++,
      capped: () => caps.hit('coap_separate_responses'),
    });
    // CON exchanges the handler has not answered yet get an empty ACK when their piggyback window passes.
    // The window is the same for all, so they queue in deadline order, behind one timer that wakes at most
    // every quarter window (25 ms at the most).
    this.unanswered = new DeadlineQueue<AckWait>({
      expire: (w) => this.windowPassed(w),
      cancelled: answered,
      resolutionMs: Math.max(1, Math.min(25, Math.floor(opts.piggybackWindowMs / 4))),
    });
    this.sweeper = setInterval(() => this.sweep(Date.now()), 1000);
    this.sweeper.unref();
    registerCoapMetrics(deps.metrics, this.counters, {
      dedupHits: () => this.dedup.hits,
      inFlight: () => this.inFlight,
      block1Transfers: () => {
        const b = this.blockwise.block1;
        return { started: b.started, completed: b.completed, failed: b.failed };
      },
      cacheEntries: () => ({
        dedup: this.dedup.size,
        block1: this.blockwise.block1.size,
        block2: this.blockwise.block2.size,
        separate: this.reliability.size,
      }),
      cacheBytes: () => ({
        dedup: this.dedup.byteSize,
        block1: this.blockwise.block1.byteSize,
        block2: this.blockwise.block2.byteSize,
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
      block1: this.blockwise.block1.size,
      block2: this.blockwise.block2.size,
      outgoing: this.reliability.size,
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
    this.reliability.settle(peer, msg.messageId, msg.type === MessageType.ACK);
  }

  /** A request, through the stages in the order of the file's header, to the handler. */
  private onRequest(msg: CoapMessage, peer: Peer): void {
    const now = Date.now();
    if (this.isDuplicate(msg, peer, now)) return;
    const problem = checkOptions(msg);
    if (problem !== undefined) return this.refuse(msg, peer, problem);
    if (this.drainMaxAge >= 0 && !continuesTransfer(msg)) {
      this.counters.rejected.draining++;
      return this.answerDirect(msg, peer, Code.SERVICE_UNAVAILABLE, 'Shutting down', [
        [Option.MAX_AGE, this.drainMaxAge],
      ]);
    }
    const ex = new ServerExchange(this, peer, msg, now);
    const answer = this.blockwise.takeRequest(ex, this.handler.handleOrphanedBlock !== undefined, now);
    if (answer !== undefined)
      return this.reply(msg, peer, answer.code, answer.options, answer.payload, false);
    if (this.inFlight >= this.opts.maxInFlight) {
      this.counters.rejected.busy++;
      return this.answerDirect(msg, peer, Code.SERVICE_UNAVAILABLE, 'Busy', [
        [Option.MAX_AGE, RESPONSE_BUSY_MAX_AGE],
      ]);
    }
    this.dispatch(ex);
  }

  /**
   * Deduplication (RFC 7252 §4.5): a message seen before gets the answer it got then (nothing while its
   * response is on its way) and goes no further; a new one is remembered.
   */
  private isDuplicate(msg: CoapMessage, peer: Peer, now: number): boolean {
    const seen = this.dedup.get(peer.key, msg.messageId, now);
    if (seen === undefined) {
      this.dedup.add(peer.key, msg.messageId, msg.type === MessageType.CON, now);
      return false;
    }
    if (typeof seen === 'string') this.send(peer, Buffer.from(seen, 'latin1'));
    else if (seen === EMPTY_ACKED) this.send(peer, encodeEmpty(MessageType.ACK, msg.messageId));
    return true;
  }

  /** Hands an exchange to the handler; a CON one not answered at once waits for its piggyback window. */
  private dispatch(ex: ServerExchange): void {
    this.inFlight++;
    try {
      if (ex.orphaned) (this.handler.handleOrphanedBlock as (ex: Exchange) => void)(ex);
      else this.handler.handle(ex);
    } catch (err) {
      this.log.error({ err }, 'request handler failed');
      if (!ex.responded)
        ex.respond({ code: Code.INTERNAL_SERVER_ERROR, payload: Buffer.from('Internal error') });
    }
    if (!ex.responded && ex.request.type === MessageType.CON) {
      if (this.opts.piggybackWindowMs === 0) this.emptyAck(ex);
      else ex.awaitAnswer(this.unanswered, ex.receivedAt + this.opts.piggybackWindowMs);
    }
  }

  /** The piggyback window of an exchange passed before its answer: it gets an empty ACK. */
  private windowPassed(w: AckWait): void {
    const ex = w.ex as ServerExchange;
    ex.wait = null;
    this.emptyAck(ex);
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
    if (suppressed(msg, code)) {
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

  private nextMid(peer: Peer): number {
    const mid = peer.nextMessageId & 0xffff;
    peer.nextMessageId = (mid + 1) & 0xffff;
    return mid;
  }

  /** Sends the handler's response for an exchange. */
  sendResponse(ex: ServerExchange, res: CoapResponse): void {
    this.inFlight--;
    if (this.closed) return;
    let payload = res.payload;
    const options: OptionEntry[] = [];
    if (res.contentFormat !== undefined) options.push([Option.CONTENT_FORMAT, res.contentFormat]);
    if (res.maxAge !== undefined) options.push([Option.MAX_AGE, res.maxAge]);
    if (res.etag) options.push([Option.ETAG, res.etag]);
    if (res.options) for (const o of res.options) options.push(o);
    if (ex.block1Szx >= 0) options.push([Option.BLOCK1, encodeBlock(ex.block1Num, false, ex.block1Szx)]);
    if (payload && payload.length > 0) {
      payload = this.blockwise.sliceResponse(ex, res, payload, options);
      if (payload === undefined) {
        return this.finish(
          ex,
          { code: Code.BAD_OPTION, payload: Buffer.from('Block2 number past the end') },
          [],
        );
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
    if (!separate || suppressed(msg, code)) {
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
    this.reliability.send(peer, mid, bytes, res.onDelivered);
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
    return this.inFlight === 0 && this.reliability.size === 0;
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
    this.reliability.dropPeer(peer);
  }

  private sweep(now: number): void {
    this.dedup.sweep(now);
    this.blockwise.sweep(now);
  }

  /** Stops timers; pending separate responses are abandoned. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.unanswered.clear();
    this.reliability.close();
    this.dedup.clear();
    this.blockwise.clear();
  }
}
