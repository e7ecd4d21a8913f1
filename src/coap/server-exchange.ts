/**
 * A request exchange on the server side: what the handler sees of a request (`Exchange`), the block-wise
 * state the block-wise stage sets on it (`BlockExchange`), and where it stands on the way back — answered,
 * acknowledged with an empty ACK, or waiting in the piggyback-window queue.
 */
import type { DeadlineQueue, Expiring } from '../collections/deadline-queue.js';
import type { Peer } from '../transport/peer.js';
import { blockSize, type BlockValue } from './block-option.js';
import type { BlockExchange, Blockwise } from './blockwise.js';
import { Option } from './constants.js';
import type { CoapResponse, Exchange } from './exchange.js';
import type { CoapMessage } from './message.js';

/** The endpoint an exchange answers through. */
export interface ExchangeOwner {
  readonly blockwise: Blockwise;
  /** Sends the handler's response for the exchange (called once). */
  sendResponse(ex: ServerExchange, res: CoapResponse): void;
}

/**
 * A CON exchange waiting for its answer, queued until its piggyback window ends. The exchange lets go of its
 * ticket when answered, so a queued ticket never keeps an answered exchange (and its datagram) alive.
 */
export class AckWait implements Expiring {
  constructor(
    public ex: ServerExchange | null,
    readonly deadline: number,
  ) {}
}

/** Answered tickets wait in the queue until they reach its head, then are dropped. */
export function answered(w: AckWait): boolean {
  return w.ex === null;
}

export class ServerExchange implements Exchange, BlockExchange {
  responded = false;
  /** An empty ACK was sent: the response will be a separate CON response. */
  emptyAcked = false;
  /** Its place in the piggyback-window queue while unanswered. */
  wait: AckWait | null = null;
  private queryCache: string[] | undefined;
  readonly method: number;
  readonly path: string;
  // Set by the block-wise stage (see BlockExchange).
  payload: Buffer;
  blocks = 1;
  block1Szx = -1;
  block1Num = 0;
  block2: BlockValue | undefined = undefined;
  orphaned = false;
  blockKey = '';

  constructor(
    readonly owner: ExchangeOwner,
    readonly peer: Peer,
    readonly request: CoapMessage,
    readonly receivedAt: number,
  ) {
    this.method = request.code;
    this.path = request.joined(Option.URI_PATH, '/');
    this.payload = request.payload;
  }

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
    return blockSize(this.owner.blockwise.responseSzx(this));
  }

  get acknowledged(): boolean {
    return this.emptyAcked;
  }

  /** Queues the exchange until its piggyback window ends at `deadline`, unless answered first. */
  awaitAnswer(queue: DeadlineQueue<AckWait>, deadline: number): void {
    this.wait = new AckWait(this, deadline);
    queue.add(this.wait);
  }

  respond(response: CoapResponse): void {
    if (this.responded) return;
    this.responded = true;
    if (this.wait !== null) {
      this.wait.ex = null;
      this.wait = null;
    }
    this.owner.sendResponse(this, response);
  }
}
