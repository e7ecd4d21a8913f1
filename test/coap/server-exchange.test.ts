import { describe, expect, it, vi } from 'vitest';
import { DeadlineQueue } from '../../src/collections/deadline-queue.js';
import { encodeBlock } from '../../src/coap/block-option.js';
import { Blockwise } from '../../src/coap/blockwise.js';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import type { CoapResponse } from '../../src/coap/exchange.js';
import { CoapMessage, encodeMessage, parseMessage, type OptionEntry } from '../../src/coap/message.js';
import { AckWait, answered, ServerExchange, type ExchangeOwner } from '../../src/coap/server-exchange.js';
import { FakePeer } from '../support/fake-peer.js';

function request(options: OptionEntry[], payload?: Buffer): CoapMessage {
  const m = parseMessage(
    encodeMessage({ type: MessageType.CON, code: Code.PUT, messageId: 7, options, payload }),
  );
  if (!(m instanceof CoapMessage)) throw new Error(m.reason);
  return m;
}

function owner(): ExchangeOwner & { responses: CoapResponse[] } {
  const blockwise = new Blockwise(
    { maxBodyBytes: 4096, preferredBlockSize: 512, maxTransfers: 1, maxBytes: 10_000, lifetimeMs: 1000 },
    1280,
    () => undefined,
  );
  const responses: CoapResponse[] = [];
  return { blockwise, responses, sendResponse: (_ex, res) => responses.push(res) };
}

describe('server exchange', () => {
  it('shows the handler the request', () => {
    const msg = request(
      [
        [Option.URI_PATH, 'a'],
        [Option.URI_PATH, 'b'],
        [Option.CONTENT_FORMAT, 60],
        [Option.URI_QUERY, 'id=1'],
        [Option.ACCEPT, 50],
        [Option.URI_QUERY, 'x=2'],
      ],
      Buffer.from('body'),
    );
    const ex = new ServerExchange(owner(), new FakePeer(), msg, 1234);
    expect(ex.method).toBe(Code.PUT);
    expect(ex.path).toBe('a/b');
    expect(ex.query).toEqual(['id=1', 'x=2']);
    expect(ex.query).toBe(ex.query);
    expect([ex.contentFormat, ex.accept]).toEqual([60, 50]);
    expect(ex.payload).toEqual(Buffer.from('body'));
    expect([ex.blocks, ex.receivedAt, ex.acknowledged, ex.responded]).toEqual([1, 1234, false, false]);
  });

  it('gives the block size its response is sliced at: ours, or the smaller one the client asked for', () => {
    expect(new ServerExchange(owner(), new FakePeer(), request([]), 0).blockSize).toBe(512);
    const ex = new ServerExchange(
      owner(),
      new FakePeer(),
      request([[Option.BLOCK2, encodeBlock(0, false, 1)]]),
      0,
    );
    ex.block2 = { num: 0, more: false, szx: 1 };
    expect(ex.blockSize).toBe(32);
  });

  it('responds once, and lets go of its piggyback-window ticket when it does', () => {
    const o = owner();
    const expire = vi.fn();
    const queue = new DeadlineQueue<AckWait>({ expire, cancelled: answered });
    const ex = new ServerExchange(o, new FakePeer(), request([]), 0);
    ex.awaitAnswer(queue, Date.now() + 60_000);
    const ticket = ex.wait as AckWait;
    expect(ticket.ex).toBe(ex);
    expect(answered(ticket)).toBe(false);
    ex.respond({ code: Code.CHANGED });
    ex.respond({ code: Code.BAD_REQUEST });
    expect(o.responses).toEqual([{ code: Code.CHANGED }]);
    expect(ex.responded).toBe(true);
    expect(ex.wait).toBeNull();
    expect(answered(ticket)).toBe(true);
    expect(queue.peek()).toBeUndefined();
    queue.clear();
    expect(expire).not.toHaveBeenCalled();
  });
});
