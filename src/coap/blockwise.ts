/**
 * Block-wise transfer (RFC 7959): the endpoint's block-wise stage and the state behind it.
 *
 * `Blockwise` takes a request's Block1, Block2 and Size1 options before the request goes to the handler —
 * 2.31 Continue until an upload is complete, 4.08 / 4.13 / 4.00 / 4.02 when it cannot go on, a later block
 * of a held response served from that response — and slices the handler's response into the block the
 * client asked for (Block2, Size2), holding the body when the request may not be run again. The block key
 * (peer, method, URI) of an exchange is built once, on first use, for both directions.
 *
 * Block1 uploads are reassembled per peer + method + URI, never per token: clients such as libcoap send a new
 * token with every block (RFC 7959 §2.4 allows it). The offset of the next expected byte is tracked rather
 * than a block number, so a client that follows a smaller block size from our 2.31 Continue (late
 * negotiation, §2.5) lands on the right place. Transfers are capped in number and bytes and expire when idle.
 *
 * Block2 bodies of responses to non-idempotent requests (a POST answered with a large downlink) are kept per
 * peer + method + URI so later blocks are served without running the request again; they are capped in
 * number and bytes and expire a lifetime after they were kept.
 */
import { BoundedMap } from '../collections/bounded-map.js';
import type { Peer } from '../transport/peer.js';
import { blockSize, decodeBlock, encodeBlock, szxForSize, type BlockValue } from './block-option.js';
import { Code, Option } from './constants.js';
import type { CoapResponse } from './exchange.js';
import type { CoapMessage, OptionEntry } from './message.js';

/** Diagnostic of the 4.08 answered to a block of a transfer that is not held. */
export const NO_TRANSFER = 'no block-wise transfer in progress for this URI';
/** Diagnostic of the 4.08 answered to a later Block2 block of a response body that is not held. */
export const NO_HELD_BODY = 'No response body is held for this URI; repeat the request';

export const enum Block1Status {
  /** More blocks expected: answer 2.31 Continue. */
  CONTINUE,
  /** The body is complete. */
  COMPLETE,
  /** 4.08 Request Entity Incomplete: block out of order. */
  INCOMPLETE,
  /**
   * A later block of a transfer this endpoint does not hold (never saw its first block, or it expired): 4.08
   * unless the handler can answer the last block of an upload completed elsewhere.
   */
  ORPHANED,
  /** 4.13 Request Entity Too Large: announced or actual size over the limit. */
  TOO_LARGE,
  /** 4.00 Bad Request: e.g. a non-final block whose payload is not the block size. */
  BAD_REQUEST,
}

export interface Block1Result {
  status: Block1Status;
  /** Complete body (COMPLETE). */
  body?: Buffer;
  /** Number of blocks the body arrived in (COMPLETE). */
  blocks?: number;
  /** SZX to put in the response's Block1 option. */
  szx: number;
  /** Diagnostic text for error answers. */
  reason?: string;
}

class Transfer {
  buf: Buffer;
  length = 0;
  blocks = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }
}

export interface BlockLimits {
  maxBodyBytes: number;
  maxTransfers: number;
  maxBytes: number;
  lifetimeMs: number;
  /** Our preferred block size exponent (we never ask for larger blocks than this). */
  preferredSzx: number;
}

export class Block1Assembler {
  /** Transfers by block key, in order of last activity (each block moves its transfer's expiry on). */
  private readonly transfers: BoundedMap<string, Transfer>;
  started = 0;
  completed = 0;
  failed = 0;

  constructor(
    private readonly limits: BlockLimits,
    onCap: (cap: 'block1_transfers' | 'block1_bytes', n: number) => void,
  ) {
    this.transfers = new BoundedMap<string, Transfer>({
      maxEntries: limits.maxTransfers,
      maxBytes: limits.maxBytes,
      timer: false,
      onCap: (cap, n) => {
        this.failed += n;
        onCap(cap === 'entries' ? 'block1_transfers' : 'block1_bytes', n);
      },
      onExpire: () => this.failed++,
    });
  }

  get size(): number {
    return this.transfers.size;
  }

  get byteSize(): number {
    return this.transfers.byteSize;
  }

  /**
   * Takes one block of a request body.
   * @param size1 the Size1 option of the request, if any (announced total size)
   */
  receive(
    key: string,
    block: BlockValue,
    payload: Buffer,
    size1: number | undefined,
    now: number,
  ): Block1Result {
    const limits = this.limits;
    const szx = Math.min(block.szx, limits.preferredSzx);
    if (block.szx === 7)
      return this.fail(key, Block1Status.BAD_REQUEST, szx, 'BERT (SZX 7) is not used over UDP');
    if (size1 !== undefined && size1 > limits.maxBodyBytes) {
      return this.fail(key, Block1Status.TOO_LARGE, szx, `body over ${limits.maxBodyBytes} bytes`);
    }
    const size = blockSize(block.szx);
    if (block.more && payload.length !== size) {
      return this.fail(
        key,
        Block1Status.BAD_REQUEST,
        szx,
        'a block with M=1 must carry exactly the block size',
      );
    }
    if (payload.length > size) {
      return this.fail(key, Block1Status.BAD_REQUEST, szx, 'payload larger than the block size');
    }
    const offset = block.num * size;
    let t: Transfer | undefined;
    if (block.num === 0) {
      this.transfers.delete(key);
      if (!block.more) {
        // A single-block body: nothing to hold.
        this.started++;
        this.completed++;
        return { status: Block1Status.COMPLETE, body: payload, blocks: 1, szx };
      }
      const capacity = Math.min(limits.maxBodyBytes, Math.max(size * 4, size1 ?? 0));
      t = new Transfer(capacity);
      this.started++;
      this.transfers.set(key, t, capacity, now + limits.lifetimeMs);
    } else {
      t = this.transfers.get(key, now);
      if (t === undefined) {
        this.failed++;
        return { status: Block1Status.ORPHANED, szx, reason: NO_TRANSFER };
      }
      if (offset !== t.length) {
        return this.fail(
          key,
          Block1Status.INCOMPLETE,
          szx,
          `expected the block at byte ${t.length}, got ${offset}`,
        );
      }
    }
    const end = offset + payload.length;
    if (end > limits.maxBodyBytes) {
      return this.fail(key, Block1Status.TOO_LARGE, szx, `body over ${limits.maxBodyBytes} bytes`);
    }
    if (end > t.buf.length) {
      const capacity = Math.min(limits.maxBodyBytes, Math.max(end, t.buf.length * 2));
      const grown = Buffer.allocUnsafe(capacity);
      t.buf.copy(grown, 0, 0, t.length);
      t.buf = grown;
      this.transfers.resize(key, capacity);
    }
    payload.copy(t.buf, offset);
    t.length = end;
    t.blocks++;
    if (!block.more) {
      this.transfers.delete(key);
      this.completed++;
      return { status: Block1Status.COMPLETE, body: t.buf.subarray(0, t.length), blocks: t.blocks, szx };
    }
    // Stored again: its expiry moves on, and it goes to the back of the line (the front is the stalest).
    this.transfers.set(key, t, t.buf.length, now + limits.lifetimeMs);
    return { status: Block1Status.CONTINUE, szx };
  }

  private fail(key: string, status: Block1Status, szx: number, reason: string): Block1Result {
    this.transfers.delete(key);
    this.failed++;
    return { status, szx, reason };
  }

  /** Drops the transfers idle for their lifetime. */
  sweep(now: number): void {
    this.transfers.sweep(now);
  }

  clear(): void {
    this.transfers.clear();
  }
}

/** A response body kept for later Block2 requests. */
export interface HeldBody {
  readonly code: number;
  readonly body: Buffer;
  readonly contentFormat: number | undefined;
  readonly etag: Buffer | undefined;
}

/**
 * Response bodies of non-idempotent requests, kept for their remaining Block2 blocks: a bounded map, capped
 * in bodies and bytes (oldest first out, reported as one cap), each body gone `lifetimeMs` after it was put.
 */
export class Block2Store {
  private readonly bodies: BoundedMap<string, HeldBody>;
  /** Bodies the current `put` evicted, under either cap. */
  private evicted = 0;

  constructor(
    maxEntries: number,
    maxBytes: number,
    lifetimeMs: number,
    private readonly onCap: (n: number) => void,
  ) {
    this.bodies = new BoundedMap({
      maxEntries,
      maxBytes,
      ttlMs: lifetimeMs,
      onCap: (_cap, n) => (this.evicted += n),
    });
  }

  get size(): number {
    return this.bodies.size;
  }

  get byteSize(): number {
    return this.bodies.byteSize;
  }

  put(key: string, held: HeldBody): void {
    this.evicted = 0;
    this.bodies.set(key, held, held.body.length);
    if (this.evicted) this.onCap(this.evicted);
  }

  get(key: string): HeldBody | undefined {
    return this.bodies.get(key);
  }

  clear(): void {
    this.bodies.clear();
  }
}

/** One block of a body: the slice and whether more follow, or undefined when NUM is past the end. */
export function sliceBlock(
  body: Buffer,
  num: number,
  szx: number,
): { payload: Buffer; more: boolean } | undefined {
  const size = blockSize(szx);
  const start = num * size;
  if (start >= body.length && !(start === 0 && body.length === 0)) return undefined;
  const end = Math.min(start + size, body.length);
  return { payload: body.subarray(start, end), more: end < body.length };
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
export function continuesTransfer(msg: CoapMessage): boolean {
  const b1 = msg.uint(Option.BLOCK1);
  if (b1 !== undefined) return b1 >> 4 > 0;
  const b2 = msg.uint(Option.BLOCK2);
  return b2 !== undefined && b2 >> 4 > 0 && !isSafeMethod(msg.code);
}

/** What the endpoint answers itself instead of handing a request on: 2.31 Continue, an error, a held block. */
export interface BlockAnswer {
  readonly code: number;
  readonly payload: Buffer | undefined;
  readonly options: OptionEntry[] | undefined;
}

function answer(code: number, diagnostic: string | undefined, options?: OptionEntry[]): BlockAnswer {
  return { code, payload: diagnostic ? Buffer.from(diagnostic) : undefined, options };
}

/** The part of a server exchange the block-wise stage reads and sets. */
export interface BlockExchange {
  readonly peer: Peer;
  readonly request: CoapMessage;
  readonly method: number;
  /** Uri-Path segments joined with "/". */
  readonly path: string;
  /** The request body: the request's payload, or the body its Block1 blocks were reassembled into. */
  payload: Buffer;
  /** Number of Block1 blocks the body arrived in. */
  blocks: number;
  /** SZX and NUM of the last Block1 block (the final response echoes it), or -1. */
  block1Szx: number;
  block1Num: number;
  /** Block2 option of the request, if any. */
  block2: BlockValue | undefined;
  /** A block of a transfer this endpoint does not hold: for the handler's `handleOrphanedBlock`. */
  orphaned: boolean;
  /** Key of the request's peer, method and URI for block-wise state: '' until first used. */
  blockKey: string;
}

/** The block key of an exchange, built on first use. */
function keyOf(ex: BlockExchange): string {
  if (ex.blockKey === '') {
    ex.blockKey = `${ex.peer.key}|${ex.method}|${ex.path}?${ex.request.joined(Option.URI_QUERY, '&')}`;
  }
  return ex.blockKey;
}

export interface BlockwiseOptions {
  maxBodyBytes: number;
  preferredBlockSize: number;
  maxTransfers: number;
  maxBytes: number;
  lifetimeMs: number;
}

/** Block-wise transfers of one endpoint: uploads being reassembled and response bodies held for later blocks. */
export class Blockwise {
  readonly block1: Block1Assembler;
  readonly block2: Block2Store;
  /** Our block size (SZX): the preferred one, within what fits a message beside header, token and options. */
  private readonly preferredSzx: number;
  private readonly maxBodyBytes: number;

  constructor(
    opts: BlockwiseOptions,
    maxMessageBytes: number,
    onCap: (cap: 'block1_transfers' | 'block1_bytes' | 'block2_bodies', n: number) => void,
  ) {
    this.preferredSzx = Math.min(
      szxForSize(opts.preferredBlockSize),
      szxForSize(Math.max(16, maxMessageBytes - 64)),
    );
    this.maxBodyBytes = opts.maxBodyBytes;
    this.block1 = new Block1Assembler({ ...opts, preferredSzx: this.preferredSzx }, onCap);
    this.block2 = new Block2Store(opts.maxTransfers, opts.maxBytes, opts.lifetimeMs, (n) =>
      onCap('block2_bodies', n),
    );
  }

  /**
   * Takes a request's block options (Size1, Block1, Block2) before it goes to the handler: sets the body,
   * the block state and `orphaned` on the exchange, and returns undefined when the request goes on, or the
   * answer to give instead. `orphansHandled`: the handler takes blocks of transfers held elsewhere.
   */
  takeRequest(ex: BlockExchange, orphansHandled: boolean, now: number): BlockAnswer | undefined {
    const msg = ex.request;
    const b1 = msg.uint(Option.BLOCK1);
    const b2 = msg.uint(Option.BLOCK2);
    const size1 = msg.uint(Option.SIZE1);
    if (size1 !== undefined && size1 > this.maxBodyBytes && hasBody(ex.method)) return this.tooLarge(b1);
    if (b1 !== undefined && hasBody(ex.method)) {
      const refused = this.takeBlock1(ex, b1, size1, orphansHandled, now);
      if (refused !== undefined) return refused;
    }
    return b2 === undefined ? undefined : this.takeBlock2(ex, b2, b1, orphansHandled);
  }

  private takeBlock1(
    ex: BlockExchange,
    b1: number,
    size1: number | undefined,
    orphansHandled: boolean,
    now: number,
  ): BlockAnswer | undefined {
    const block1 = decodeBlock(b1);
    const r = this.block1.receive(keyOf(ex), block1, ex.payload, size1, now);
    switch (r.status) {
      case Block1Status.CONTINUE:
        return answer(Code.CONTINUE, undefined, [[Option.BLOCK1, encodeBlock(block1.num, true, r.szx)]]);
      case Block1Status.ORPHANED:
        // The last block of an upload this endpoint holds nothing of: the handler may know it completed.
        if (block1.more || !orphansHandled) {
          return answer(Code.REQUEST_ENTITY_INCOMPLETE, r.reason, [[Option.BLOCK1, b1]]);
        }
        ex.orphaned = true;
        ex.blocks = block1.num + 1;
        break;
      case Block1Status.INCOMPLETE:
        return answer(Code.REQUEST_ENTITY_INCOMPLETE, r.reason, [[Option.BLOCK1, b1]]);
      case Block1Status.TOO_LARGE:
        return this.tooLarge(b1);
      case Block1Status.BAD_REQUEST:
        return answer(Code.BAD_REQUEST, r.reason);
      case Block1Status.COMPLETE:
        ex.payload = r.body as Buffer;
        ex.blocks = r.blocks as number;
        break;
    }
    ex.block1Szx = Math.min(block1.szx, this.preferredSzx);
    ex.block1Num = block1.num;
    return undefined;
  }

  private takeBlock2(
    ex: BlockExchange,
    b2: number,
    b1: number | undefined,
    orphansHandled: boolean,
  ): BlockAnswer | undefined {
    const block2 = decodeBlock(b2);
    if (block2.szx === 7) return answer(Code.BAD_OPTION, 'BERT is not used over UDP');
    if (block2.num > 0 && !isSafeMethod(ex.method) && !ex.orphaned) {
      // A later block of a response to a non-idempotent request: serve it from the held body; if none is
      // held (block 0 went out from another replica), the handler may be able to give the body again.
      const held = this.block2.get(keyOf(ex));
      if (held) return this.heldBlock(ex.request, held, block2);
      if (!orphansHandled || b1 !== undefined) return answer(Code.REQUEST_ENTITY_INCOMPLETE, NO_HELD_BODY);
      ex.orphaned = true;
    }
    ex.block2 = block2;
    return undefined;
  }

  private tooLarge(b1: number | undefined): BlockAnswer {
    const options: OptionEntry[] = [[Option.SIZE1, this.maxBodyBytes]];
    if (b1 !== undefined) options.push([Option.BLOCK1, b1]);
    return answer(Code.REQUEST_ENTITY_TOO_LARGE, `Body over ${this.maxBodyBytes} bytes`, options);
  }

  private heldBlock(msg: CoapMessage, held: HeldBody, block2: BlockValue): BlockAnswer {
    const szx = Math.min(block2.szx, this.preferredSzx);
    const slice = sliceBlock(held.body, block2.num, szx);
    if (!slice) return answer(Code.BAD_OPTION, 'Block2 number past the end');
    const options: OptionEntry[] = [[Option.BLOCK2, encodeBlock(block2.num, slice.more, szx)]];
    if (held.contentFormat !== undefined) options.push([Option.CONTENT_FORMAT, held.contentFormat]);
    if (held.etag) options.push([Option.ETAG, held.etag]);
    if (msg.has(Option.SIZE2)) options.push([Option.SIZE2, held.body.length]);
    return { code: held.code, payload: slice.payload, options };
  }

  /** The block size (SZX) a response to this exchange is sliced at: the client's, if smaller than ours. */
  responseSzx(ex: BlockExchange): number {
    const b2 = ex.block2;
    return b2 ? Math.min(b2.szx, this.preferredSzx) : this.preferredSzx;
  }

  /**
   * The part of a non-empty response payload that goes in this message: all of it when it fits one block
   * and no block was asked for, else the block asked for (block 0 unless the request had Block2), with
   * Block2 and Size2 added to `options`. The body of a response to a request that may not be run again is
   * held for the later blocks. Undefined when the block asked for is past the end of the body.
   */
  sliceResponse(
    ex: BlockExchange,
    res: CoapResponse,
    body: Buffer,
    options: OptionEntry[],
  ): Buffer | undefined {
    const b2 = ex.block2;
    const szx = this.responseSzx(ex);
    if (b2 === undefined && body.length <= blockSize(szx)) return body;
    const num = b2 ? b2.num : 0;
    const slice = sliceBlock(body, num, szx);
    if (!slice) return undefined;
    options.push([Option.BLOCK2, encodeBlock(num, slice.more, szx)]);
    if (num === 0 || ex.request.has(Option.SIZE2)) options.push([Option.SIZE2, body.length]);
    if (slice.more && !isSafeMethod(ex.method)) {
      const held = { code: res.code, body, contentFormat: res.contentFormat, etag: res.etag };
      this.block2.put(keyOf(ex), held);
    }
    return slice.payload;
  }

  /** Drops Block1 transfers idle for their lifetime (held bodies expire on their own). */
  sweep(now: number): void {
    this.block1.sweep(now);
  }

  clear(): void {
    this.block1.clear();
    this.block2.clear();
  }
}
