/** A request as the handler sees it, and the response it gives. */
import type { Peer } from '../transport/peer.js';
import { ContentFormat } from './constants.js';
import type { CoapMessage, OptionEntry } from './message.js';

export interface CoapResponse {
  code: number;
  payload?: Buffer;
  contentFormat?: number;
  /** Max-Age in seconds (sent when set). */
  maxAge?: number;
  etag?: Buffer;
  /** Further options, e.g. Location-Path. */
  options?: OptionEntry[];
  /**
   * Ask for a confirmable response: the endpoint sends it as a separate CON response (after an empty ACK) and
   * reports the peer's ACK through `onDelivered` — confirmed delivery of a downlink.
   */
  confirmable?: boolean;
  onDelivered?: (delivered: boolean) => void;
}

/** A response with a short plain-text diagnostic. */
export function text(code: number, message: string, maxAge?: number): CoapResponse {
  return { code, payload: Buffer.from(message), contentFormat: ContentFormat.TEXT, maxAge };
}

export interface Exchange {
  readonly peer: Peer;
  /** The request message (for a Block1 upload: the one that carried the last block). */
  readonly request: CoapMessage;
  readonly method: number;
  /** Uri-Path segments joined with "/" (no leading slash). */
  readonly path: string;
  /** Uri-Query options. */
  readonly query: readonly string[];
  /** Request body (reassembled from all Block1 blocks). */
  readonly payload: Buffer;
  /** Number of Block1 blocks the body arrived in (1 without block-wise transfer). */
  readonly blocks: number;
  readonly contentFormat: number | undefined;
  readonly accept: number | undefined;
  /** Time the (last block of the) request arrived, ms since the epoch. */
  readonly receivedAt: number;
  /** Largest response payload sent in one message; a longer one goes out block-wise (Block2). */
  readonly blockSize: number;
  /**
   * True once the request was acknowledged with an empty ACK: the response will be a separate CON response.
   * (libcoap's client, up to at least 4.3.x, cannot receive a Block2 body in a separate response.)
   */
  readonly acknowledged: boolean;
  /** Sends the response. Call exactly once, synchronously or later. */
  respond(response: CoapResponse): void;
  /** True once `respond` was called. */
  readonly responded: boolean;
}

/** The layer above the CoAP endpoint (the gateway). */
export interface RequestHandler {
  handle(exchange: Exchange): void;
  /**
   * Optional: a block of a transfer this endpoint does not hold, because its start went to another replica or
   * to a process that ended. Either the last block of a Block1 upload whose earlier blocks are not here
   * (`payload` is that block alone): the handler answers 2.04 when it knows the upload was completed and
   * published elsewhere, else 4.08 Request Entity Incomplete so the client starts over. Or a later Block2
   * block (`block2` NUM > 0) of the response to a non-idempotent request: the handler may give the same
   * response body again, without acting on the request a second time, else 4.08. Without this method both
   * are answered 4.08.
   */
  handleOrphanedBlock?(exchange: Exchange): void;
}

/** Value of a `key=value` Uri-Query entry, or undefined. */
export function queryValue(query: readonly string[], key: string): string | undefined {
  for (const q of query) {
    if (q.length > key.length && q.charCodeAt(key.length) === 61 /* = */ && q.startsWith(key)) {
      return q.slice(key.length + 1);
    }
  }
  return undefined;
}
