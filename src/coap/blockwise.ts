/**
 * Block-wise transfer state (RFC 7959).
 *
 * Block1 uploads are reassembled per peer + method + URI, never per token: clients such as libcoap send a new
 * token with every block (RFC 7959 §2.4 allows it). The offset of the next expected byte is tracked rather
 * than a block number, so a client that follows a smaller block size from our 2.31 Continue (late
 * negotiation, §2.5) lands on the right place. Transfers are capped in number and bytes and expire when idle.
 *
 * Block2 bodies of responses to non-idempotent requests (a POST answered with a large downlink) are kept per
 * peer + method + URI so later blocks are served without running the request again.
 */
import { blockSize, type BlockValue } from './block-option.js';

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
  constructor(
    capacity: number,
    public expiresAt: number,
  ) {
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
  private readonly transfers = new Map<string, Transfer>();
  private bytes = 0;
  started = 0;
  completed = 0;
  failed = 0;

  constructor(
    private readonly limits: BlockLimits,
    private readonly onCap: (cap: 'block1_transfers' | 'block1_bytes', n: number) => void,
  ) {}

  get size(): number {
    return this.transfers.size;
  }

  get byteSize(): number {
    return this.bytes;
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
    let t = this.transfers.get(key);
    if (block.num === 0) {
      if (t) this.drop(key, t);
      if (!block.more) {
        // A single-block body: nothing to hold.
        this.started++;
        this.completed++;
        return { status: Block1Status.COMPLETE, body: payload, blocks: 1, szx };
      }
      const capacity = Math.min(limits.maxBodyBytes, Math.max(size * 4, size1 ?? 0));
      t = new Transfer(capacity, now + limits.lifetimeMs);
      this.bytes += capacity;
      this.transfers.set(key, t);
      this.started++;
      this.enforceCaps(key);
    } else if (!t || t.expiresAt <= now) {
      if (t) this.drop(key, t);
      this.failed++;
      return { status: Block1Status.ORPHANED, szx, reason: NO_TRANSFER };
    } else if (offset !== t.length) {
      return this.fail(
        key,
        Block1Status.INCOMPLETE,
        szx,
        `expected the block at byte ${t.length}, got ${offset}`,
      );
    }
    const end = offset + payload.length;
    if (end > limits.maxBodyBytes) {
      return this.fail(key, Block1Status.TOO_LARGE, szx, `body over ${limits.maxBodyBytes} bytes`);
    }
    if (end > t.buf.length) {
      const capacity = Math.min(limits.maxBodyBytes, Math.max(end, t.buf.length * 2));
      const grown = Buffer.allocUnsafe(capacity);
      t.buf.copy(grown, 0, 0, t.length);
      this.bytes += capacity - t.buf.length;
      t.buf = grown;
      this.enforceCaps(key);
    }
    payload.copy(t.buf, offset);
    t.length = end;
    t.blocks++;
    // Keep the Map ordered by last activity: the front is always the stalest transfer.
    this.transfers.delete(key);
    t.expiresAt = now + limits.lifetimeMs;
    if (!block.more) {
      this.bytes -= t.buf.length;
      this.completed++;
      return { status: Block1Status.COMPLETE, body: t.buf.subarray(0, t.length), blocks: t.blocks, szx };
    }
    this.transfers.set(key, t);
    return { status: Block1Status.CONTINUE, szx };
  }

  private fail(key: string, status: Block1Status, szx: number, reason: string): Block1Result {
    const t = this.transfers.get(key);
    if (t) this.drop(key, t);
    this.failed++;
    return { status, szx, reason };
  }

  private drop(key: string, t: Transfer): void {
    this.transfers.delete(key);
    this.bytes -= t.buf.length;
  }

  private enforceCaps(keep: string): void {
    let byCount = 0;
    let byBytes = 0;
    for (const [k, t] of this.transfers) {
      const overCount = this.transfers.size > this.limits.maxTransfers;
      const overBytes = this.bytes > this.limits.maxBytes;
      if (!overCount && !overBytes) break;
      if (k === keep) continue;
      this.drop(k, t);
      this.failed++;
      if (overCount) byCount++;
      else byBytes++;
    }
    if (byCount) this.onCap('block1_transfers', byCount);
    if (byBytes) this.onCap('block1_bytes', byBytes);
  }

  sweep(now: number): void {
    for (const [k, t] of this.transfers) {
      if (t.expiresAt > now) break;
      this.drop(k, t);
      this.failed++;
    }
  }

  clear(): void {
    this.transfers.clear();
    this.bytes = 0;
  }
}

/** A response body kept for later Block2 requests. */
export class HeldBody {
  constructor(
    readonly code: number,
    readonly body: Buffer,
    readonly contentFormat: number | undefined,
    readonly etag: Buffer | undefined,
    public expiresAt: number,
  ) {}
}

/** Response bodies of non-idempotent requests, kept for their remaining Block2 blocks. */
export class Block2Store {
  private readonly bodies = new Map<string, HeldBody>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    private readonly lifetimeMs: number,
    private readonly onCap: (n: number) => void,
  ) {}

  get size(): number {
    return this.bodies.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  put(key: string, held: Omit<HeldBody, 'expiresAt'>, now: number): void {
    this.delete(key);
    const h = new HeldBody(held.code, held.body, held.contentFormat, held.etag, now + this.lifetimeMs);
    this.bodies.set(key, h);
    this.bytes += h.body.length;
    let n = 0;
    for (const [k, b] of this.bodies) {
      if (this.bodies.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      if (k === key) continue;
      this.bodies.delete(k);
      this.bytes -= b.body.length;
      n++;
    }
    if (n) this.onCap(n);
  }

  get(key: string, now: number): HeldBody | undefined {
    const h = this.bodies.get(key);
    if (h && h.expiresAt <= now) {
      this.delete(key);
      return undefined;
    }
    return h;
  }

  delete(key: string): void {
    const h = this.bodies.get(key);
    if (h) {
      this.bodies.delete(key);
      this.bytes -= h.body.length;
    }
  }

  sweep(now: number): void {
    for (const [k, h] of this.bodies) {
      if (h.expiresAt > now) break;
      this.bodies.delete(k);
      this.bytes -= h.body.length;
    }
  }

  clear(): void {
    this.bodies.clear();
    this.bytes = 0;
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
