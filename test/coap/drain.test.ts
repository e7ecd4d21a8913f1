/** A draining endpoint: refuses new exchanges with 5.03 and Max-Age, finishes what it had started. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeBlock } from '../../src/coap/block-option.js';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapEndpoint } from '../../src/coap/endpoint.js';
import type { Exchange, RequestHandler } from '../../src/coap/exchange.js';
import { encodeEmpty, encodeMessage, type OptionEntry } from '../../src/coap/message.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import { endpointOptions } from '../support/endpoint-options.js';
import { FakePeer } from '../support/fake-peer.js';

/** Leaves every exchange open; the test answers them. */
class HoldingHandler implements RequestHandler {
  readonly seen: Exchange[] = [];
  handle(ex: Exchange): void {
    this.seen.push(ex);
  }
}

let mid = 100;
function post(
  opts: OptionEntry[] = [],
  payload: Buffer = Buffer.from('x'),
  type = MessageType.CON,
  messageId = mid++,
) {
  return encodeMessage({
    type,
    code: Code.POST,
    messageId,
    token: Buffer.from([messageId & 0xff]),
    options: [[Option.URI_PATH, 'up'], ...opts],
    payload,
  });
}

describe('draining endpoint', () => {
  let handler: HoldingHandler;
  let endpoint: CoapEndpoint;
  let peer: FakePeer;
  let metrics: ReturnType<typeof createMetricsRegistry>;

  beforeEach(() => {
    vi.useFakeTimers();
    handler = new HoldingHandler();
    peer = new FakePeer();
    metrics = createMetricsRegistry(false);
    endpoint = new CoapEndpoint(endpointOptions({ piggybackWindowMs: 50 }), handler, {
      log: silentLogger(),
      metrics,
      caps: new CapReporter(metrics, silentLogger()),
    });
  });
  afterEach(() => {
    endpoint.close();
    vi.useRealTimers();
  });

  it('answers new CON and NON requests 5.03 with the Max-Age it was given, without the handler', () => {
    endpoint.drain(7);
    expect(endpoint.draining).toBe(true);
    endpoint.receive(post(), peer);
    endpoint.receive(post([], Buffer.from('y'), MessageType.NON), peer);
    const [ack, non] = peer.take();
    expect([ack.type, ack.code, ack.uint(Option.MAX_AGE)]).toEqual([
      MessageType.ACK,
      Code.SERVICE_UNAVAILABLE,
      7,
    ]);
    expect([non.type, non.code, non.uint(Option.MAX_AGE)]).toEqual([
      MessageType.NON,
      Code.SERVICE_UNAVAILABLE,
      7,
    ]);
    expect(handler.seen).toHaveLength(0);
  });

  it('lets an exchange in flight finish, answers its retransmission from the dedup cache, and waits for the ACK of its separate response', async () => {
    const first = post([], Buffer.from('in flight'), MessageType.CON, 0x4242);
    endpoint.receive(first, peer);
    vi.advanceTimersByTime(62); // piggyback window (+ one check): empty ACK
    expect(peer.take().map((m) => m.code)).toEqual([Code.EMPTY]);
    endpoint.drain(5);
    expect(endpoint.idle).toBe(false);
    const idle = endpoint.whenIdle(10_000);

    // The device retransmits its request: still the empty ACK, not a 5.03, and the handler is not run again.
    endpoint.receive(first, peer);
    expect(peer.take().map((m) => [m.type, m.code])).toEqual([[MessageType.ACK, Code.EMPTY]]);
    expect(handler.seen).toHaveLength(1);

    handler.seen[0].respond({ code: Code.CHANGED });
    const [con] = peer.take();
    expect([con.type, con.code]).toEqual([MessageType.CON, Code.CHANGED]);
    expect(endpoint.idle).toBe(false); // the separate response still waits for its ACK
    endpoint.receive(encodeEmpty(MessageType.ACK, con.messageId), peer);
    expect(endpoint.idle).toBe(true);
    await vi.advanceTimersByTimeAsync(50);
    await expect(idle).resolves.toBe(true);
  });

  it('continues a Block1 upload that had started, but refuses to start one', () => {
    const body = Buffer.alloc(40, 1);
    const block = (num: number, more: boolean, payload: Buffer) =>
      post([[Option.BLOCK1, encodeBlock(num, more, 0)]], payload); // SZX 0: 16-byte blocks
    endpoint.receive(block(0, true, body.subarray(0, 16)), peer);
    expect(peer.take()[0].code).toBe(Code.CONTINUE);
    endpoint.drain(5);
    endpoint.receive(block(1, true, body.subarray(16, 32)), peer);
    expect(peer.take()[0].code).toBe(Code.CONTINUE);
    endpoint.receive(block(2, false, body.subarray(32)), peer);
    expect(handler.seen).toHaveLength(1);
    expect(handler.seen[0].payload).toEqual(body);
    handler.seen[0].respond({ code: Code.CHANGED });
    expect(peer.take()[0].code).toBe(Code.CHANGED);

    const other = new FakePeer('udp:10.0.0.2:6000', '10.0.0.2', 6000);
    endpoint.receive(block(0, true, body.subarray(0, 16)), other);
    expect(other.take()[0].code).toBe(Code.SERVICE_UNAVAILABLE);
  });

  it('reports a drain that does not finish in time', async () => {
    endpoint.receive(post(), peer);
    endpoint.drain(5);
    const idle = endpoint.whenIdle(1000);
    await vi.advanceTimersByTimeAsync(1100);
    await expect(idle).resolves.toBe(false);
    expect(endpoint.inFlight).toBe(1);
  });

  it('counts the requests it refused', async () => {
    endpoint.drain(5);
    endpoint.receive(post(), peer);
    const text = await metrics.getSingleMetricAsString('cellgate_coap_rejected_total');
    expect(text).toContain('cellgate_coap_rejected_total{reason="draining"} 1');
  });
});
