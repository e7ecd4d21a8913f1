import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeBlock, decodeBlock } from '../../src/coap/block-option.js';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapEndpoint, type EndpointOptions } from '../../src/coap/endpoint.js';
import type { CoapResponse, Exchange, RequestHandler } from '../../src/coap/exchange.js';
import { encodeEmpty, encodeMessage, type OptionEntry } from '../../src/coap/message.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CapReporter, createMetricsRegistry } from '../../src/ops/metrics.js';
import { endpointOptions } from '../support/endpoint-options.js';
import { FakePeer } from '../support/fake-peer.js';

class TestHandler implements RequestHandler {
  readonly seen: Exchange[] = [];
  /** What to answer; undefined leaves the exchange open (respond later from the test). */
  answer: ((ex: Exchange) => CoapResponse | undefined) | undefined = () => ({ code: Code.CHANGED });
  handle(ex: Exchange): void {
    this.seen.push(ex);
    const r = this.answer?.(ex);
    if (r) ex.respond(r);
  }
}

const options = endpointOptions;

let mid = 1;
function req(
  type: MessageType,
  code: number,
  opts: OptionEntry[] = [],
  payload?: Buffer,
  messageId = mid++,
  token: Buffer = Buffer.from([0xab, messageId & 0xff]),
): Buffer {
  return encodeMessage({ type, code, messageId, token, options: opts, payload });
}

describe('CoAP endpoint', () => {
  let handler: TestHandler;
  let endpoint: CoapEndpoint;
  let peer: FakePeer;
  let metrics: ReturnType<typeof createMetricsRegistry>;

  function make(over: Partial<EndpointOptions> = {}) {
    endpoint?.close();
    metrics = createMetricsRegistry(false);
    endpoint = new CoapEndpoint(options(over), handler, {
      log: silentLogger(),
      metrics,
      caps: new CapReporter(metrics, silentLogger()),
    });
  }

  beforeEach(() => {
    handler = new TestHandler();
    peer = new FakePeer();
    make();
  });
  afterEach(() => {
    endpoint.close();
    vi.useRealTimers();
  });

  describe('messaging (RFC 7252 §4)', () => {
    it('answers a CON request with a piggybacked ACK carrying the token', () => {
      endpoint.receive(
        req(MessageType.CON, Code.POST, [[Option.URI_PATH, 'up']], Buffer.from('x'), 0x1111),
        peer,
      );
      const [ack] = peer.take();
      expect(ack.type).toBe(MessageType.ACK);
      expect(ack.code).toBe(Code.CHANGED);
      expect(ack.messageId).toBe(0x1111);
      expect(ack.token).toEqual(Buffer.from([0xab, 0x11]));
      expect(handler.seen[0].path).toBe('up');
      expect(handler.seen[0].payload).toEqual(Buffer.from('x'));
    });

    it('answers a NON request with a NON response with its own Message ID', () => {
      endpoint.receive(req(MessageType.NON, Code.POST, [], Buffer.from('x'), 0x2222), peer);
      const [res] = peer.take();
      expect(res.type).toBe(MessageType.NON);
      expect(res.messageId).toBe(1000);
      expect(peer.nextMessageId).toBe(1001);
    });

    it('answers a ping (empty CON) with RST and ignores an empty NON', () => {
      endpoint.receive(encodeEmpty(MessageType.CON, 0x3333), peer);
      const [rst] = peer.take();
      expect(rst.type).toBe(MessageType.RST);
      expect(rst.messageId).toBe(0x3333);
      endpoint.receive(Buffer.from([0x50, 0, 0, 1]), peer);
      expect(peer.sent).toHaveLength(0);
      expect(handler.seen).toHaveLength(0);
    });

    it('rejects a response it did not ask for: RST for CON, silence for NON', () => {
      endpoint.receive(req(MessageType.CON, Code.CONTENT, [], undefined, 0x4444), peer);
      expect(peer.take()[0].type).toBe(MessageType.RST);
      endpoint.receive(req(MessageType.NON, Code.CONTENT), peer);
      expect(peer.sent).toHaveLength(0);
    });

    it('answers a message format error in a CON with RST and ignores it in a NON', () => {
      endpoint.receive(Buffer.from([0x49, 0x01, 0x12, 0x34]), peer); // TKL 9
      const [rst] = peer.take();
      expect(rst.type).toBe(MessageType.RST);
      expect(rst.messageId).toBe(0x1234);
      endpoint.receive(Buffer.from([0x59, 0x01, 0x12, 0x35]), peer);
      endpoint.receive(Buffer.from([0x60, 0x01]), peer);
      expect(peer.sent).toHaveLength(0);
    });
  });

  describe('deduplication (RFC 7252 §4.5)', () => {
    it('answers a retransmitted CON with the same ACK and handles it once', () => {
      const data = req(MessageType.CON, Code.POST, [], Buffer.from('once'));
      endpoint.receive(data, peer);
      endpoint.receive(data, peer);
      endpoint.receive(data, peer);
      expect(handler.seen).toHaveLength(1);
      expect(peer.sent).toHaveLength(3);
      expect(peer.sent[1]).toEqual(peer.sent[0]);
      expect(peer.sent[2]).toEqual(peer.sent[0]);
    });

    it('answers a duplicate NON with the same NON response', () => {
      const data = req(MessageType.NON, Code.POST, [], Buffer.from('once'));
      endpoint.receive(data, peer);
      endpoint.receive(data, peer);
      expect(handler.seen).toHaveLength(1);
      expect(peer.sent[1]).toEqual(peer.sent[0]);
    });

    it('treats the same Message ID from another peer as a new message', () => {
      const data = req(MessageType.CON, Code.POST, [], Buffer.from('x'));
      endpoint.receive(data, peer);
      endpoint.receive(data, new FakePeer('udp:10.0.0.2:5000', '10.0.0.2'));
      expect(handler.seen).toHaveLength(2);
    });

    it('forgets exchanges after EXCHANGE_LIFETIME', () => {
      vi.useFakeTimers({ now: 1_000_000 });
      make();
      const data = req(MessageType.CON, Code.POST, [], Buffer.from('x'));
      endpoint.receive(data, peer);
      vi.setSystemTime(1_000_000 + 246_000);
      endpoint.receive(data, peer);
      expect(handler.seen).toHaveLength(1);
      vi.setSystemTime(1_000_000 + 248_000);
      endpoint.receive(data, peer);
      expect(handler.seen).toHaveLength(2);
    });

    it('stays within its entry cap, evicting the oldest and reporting the cap', async () => {
      make({ dedup: { maxEntries: 50, maxBytes: 1_000_000 } });
      for (let i = 0; i < 200; i++) endpoint.receive(req(MessageType.CON, Code.POST, [], undefined, i), peer);
      expect(endpoint.stats.dedupEntries).toBe(50);
      const text = await metrics.metrics();
      expect(text).toMatch(/cellgate_cap_hits_total\{cap="coap_dedup"\} 150/);
      // The newest are still deduplicated; the oldest are not.
      endpoint.receive(req(MessageType.CON, Code.POST, [], undefined, 199), peer);
      expect(handler.seen).toHaveLength(200);
      endpoint.receive(req(MessageType.CON, Code.POST, [], undefined, 0), peer);
      expect(handler.seen).toHaveLength(201);
    });

    it('stays within its byte cap', () => {
      make({ dedup: { maxEntries: 100_000, maxBytes: 20_000 } });
      handler.answer = () => ({ code: Code.CONTENT, payload: Buffer.alloc(500) });
      for (let i = 0; i < 500; i++) endpoint.receive(req(MessageType.CON, Code.POST, [], undefined, i), peer);
      expect(endpoint.stats.dedupBytes).toBeLessThanOrEqual(20_000);
      expect(endpoint.stats.dedupEntries).toBeGreaterThan(10);
    });
  });

  describe('separate responses (RFC 7252 §5.2.2)', () => {
    it('sends an empty ACK after the piggyback window, then a CON response until acknowledged', () => {
      vi.useFakeTimers();
      make({ piggybackWindowMs: 50 });
      handler.answer = undefined;
      const data = req(MessageType.CON, Code.POST, [], Buffer.from('slow'), 0x5555);
      endpoint.receive(data, peer);
      expect(peer.sent).toHaveLength(0);
      // Nothing before the window ends; the empty ACK within one check (a quarter of the window) after it.
      vi.advanceTimersByTime(49);
      expect(peer.sent).toHaveLength(0);
      vi.advanceTimersByTime(13);
      const [ack] = peer.take();
      expect(ack.type).toBe(MessageType.ACK);
      expect(ack.code).toBe(Code.EMPTY);
      expect(ack.messageId).toBe(0x5555);
      // A retransmission of the request now gets the empty ACK again.
      endpoint.receive(data, peer);
      expect(peer.take()[0].code).toBe(Code.EMPTY);
      let delivered: boolean | undefined;
      handler.seen[0].respond({ code: Code.CHANGED, onDelivered: (d) => (delivered = d) });
      const [con] = peer.take();
      expect(con.type).toBe(MessageType.CON);
      expect(con.code).toBe(Code.CHANGED);
      expect(con.token).toEqual(Buffer.from([0xab, 0x55]));
      // Retransmitted with exponential back-off: first after ACK_TIMEOUT..ACK_TIMEOUT*1.5.
      vi.advanceTimersByTime(3000);
      expect(peer.take()).toHaveLength(1);
      endpoint.receive(encodeEmpty(MessageType.ACK, con.messageId), peer);
      vi.advanceTimersByTime(60_000);
      expect(peer.sent).toHaveLength(0);
      expect(delivered).toBe(true);
    });

    it('gives up after MAX_RETRANSMIT and reports the response undelivered', () => {
      vi.useFakeTimers();
      make({ piggybackWindowMs: 0 });
      handler.answer = undefined;
      endpoint.receive(req(MessageType.CON, Code.POST), peer);
      expect(peer.take()).toHaveLength(1); // empty ACK at once (window 0)
      let delivered: boolean | undefined;
      handler.seen[0].respond({ code: Code.CHANGED, onDelivered: (d) => (delivered = d) });
      vi.advanceTimersByTime(200_000);
      expect(peer.take()).toHaveLength(1 + 4);
      expect(delivered).toBe(false);
    });

    it('stops retransmitting when the peer answers RST', () => {
      vi.useFakeTimers();
      make({ piggybackWindowMs: 0 });
      handler.answer = undefined;
      endpoint.receive(req(MessageType.CON, Code.POST), peer);
      let delivered: boolean | undefined;
      handler.seen[0].respond({ code: Code.CHANGED, onDelivered: (d) => (delivered = d) });
      const con = peer.take()[1];
      endpoint.receive(encodeEmpty(MessageType.RST, con.messageId), peer);
      vi.advanceTimersByTime(200_000);
      expect(peer.sent).toHaveLength(0);
      expect(delivered).toBe(false);
    });

    it('past its cap on unacknowledged separate responses, sends untracked and reports the cap', async () => {
      vi.useFakeTimers();
      make({ piggybackWindowMs: 0, maxInFlight: 1 });
      handler.answer = undefined;
      const delivered: boolean[] = [];
      for (let i = 0; i < 2; i++) {
        endpoint.receive(req(MessageType.CON, Code.POST), peer);
        handler.seen[i].respond({ code: Code.CHANGED, onDelivered: (d) => delivered.push(d) });
      }
      expect(peer.take().map((m) => m.type)).toEqual([
        MessageType.ACK,
        MessageType.CON,
        MessageType.ACK,
        MessageType.CON,
      ]);
      expect(delivered).toEqual([false]);
      expect(endpoint.stats.outgoing).toBe(1);
      expect(await metrics.metrics()).toMatch(/cellgate_cap_hits_total\{cap="coap_separate_responses"\} 1/);
    });

    it('sends a confirmable response when the handler asks for one', () => {
      endpoint.receive(req(MessageType.CON, Code.POST), peer);
      handler.answer = () => ({ code: Code.CHANGED, confirmable: true });
      endpoint.receive(req(MessageType.CON, Code.POST), peer);
      const sent = peer.take();
      expect(sent.map((m) => [m.type, m.code])).toEqual([
        [MessageType.ACK, Code.CHANGED],
        [MessageType.ACK, Code.EMPTY],
        [MessageType.CON, Code.CHANGED],
      ]);
    });
  });

  describe('options (RFC 7252 §5.4)', () => {
    it('answers an unrecognised critical option in a CON with 4.02 and a diagnostic', () => {
      endpoint.receive(req(MessageType.CON, Code.POST, [[9, Buffer.from([1])]]), peer);
      const [res] = peer.take();
      expect(res.code).toBe(Code.BAD_OPTION);
      expect(res.payload.toString()).toMatch(/option 9/);
      expect(handler.seen).toHaveLength(0);
    });

    it('rejects an unrecognised critical option in a NON with RST', () => {
      endpoint.receive(req(MessageType.NON, Code.POST, [[9, Buffer.from([1])]]), peer);
      expect(peer.take()[0].type).toBe(MessageType.RST);
    });

    it('ignores an unrecognised elective option', () => {
      endpoint.receive(req(MessageType.CON, Code.POST, [[2048, Buffer.from([1])]]), peer);
      expect(peer.take()[0].code).toBe(Code.CHANGED);
    });

    it('treats a critical option with a bad length or repeated when not repeatable as unrecognised', () => {
      endpoint.receive(req(MessageType.CON, Code.POST, [[Option.URI_HOST, '']]), peer);
      expect(peer.take()[0].code).toBe(Code.BAD_OPTION);
      endpoint.receive(req(MessageType.CON, Code.POST, [[Option.BLOCK1, Buffer.alloc(4)]]), peer);
      expect(peer.take()[0].code).toBe(Code.BAD_OPTION);
      endpoint.receive(
        req(MessageType.CON, Code.GET, [
          [Option.ACCEPT, 50],
          [Option.ACCEPT, 60],
        ]),
        peer,
      );
      expect(peer.take()[0].code).toBe(Code.BAD_OPTION);
      // A repeated elective option is ignored.
      endpoint.receive(
        req(MessageType.CON, Code.POST, [
          [Option.CONTENT_FORMAT, 50],
          [Option.CONTENT_FORMAT, 60],
        ]),
        peer,
      );
      expect(peer.take()[0].code).toBe(Code.CHANGED);
    });

    it('answers Proxy-Uri with 5.05 and an unknown method with 4.05', () => {
      endpoint.receive(req(MessageType.CON, Code.GET, [[Option.PROXY_URI, 'coap://x/']]), peer);
      expect(peer.take()[0].code).toBe(Code.PROXYING_NOT_SUPPORTED);
      endpoint.receive(req(MessageType.CON, 12), peer);
      const [res] = peer.take();
      expect(res.code).toBe(Code.METHOD_NOT_ALLOWED);
      expect(res.payload.length).toBeGreaterThan(0);
    });

    it('honours No-Response (RFC 7967)', () => {
      endpoint.receive(req(MessageType.NON, Code.POST, [[Option.NO_RESPONSE, 2]]), peer);
      expect(peer.sent).toHaveLength(0);
      expect(handler.seen).toHaveLength(1);
      handler.answer = () => ({ code: Code.SERVICE_UNAVAILABLE });
      endpoint.receive(req(MessageType.NON, Code.POST, [[Option.NO_RESPONSE, 2]]), peer);
      expect(peer.take()[0].code).toBe(Code.SERVICE_UNAVAILABLE);
      handler.answer = () => ({ code: Code.CHANGED });
      endpoint.receive(req(MessageType.CON, Code.POST, [[Option.NO_RESPONSE, 2]]), peer);
      expect(peer.take()[0].code).toBe(Code.EMPTY);
    });

    it('answers 5.03 with Max-Age when too many exchanges are in flight', () => {
      make({ maxInFlight: 2 });
      handler.answer = undefined;
      for (let i = 0; i < 3; i++) endpoint.receive(req(MessageType.NON, Code.POST), peer);
      const [busy] = peer.take();
      expect(busy.code).toBe(Code.SERVICE_UNAVAILABLE);
      expect(busy.uint(Option.MAX_AGE)).toBeGreaterThan(0);
      expect(handler.seen).toHaveLength(2);
    });

    it('answers 5.00 when the handler throws, and keeps serving', () => {
      handler.answer = () => {
        throw new Error('boom');
      };
      endpoint.receive(req(MessageType.CON, Code.POST), peer);
      expect(peer.take()[0].code).toBe(Code.INTERNAL_SERVER_ERROR);
      handler.answer = () => ({ code: Code.CHANGED });
      endpoint.receive(req(MessageType.CON, Code.POST), peer);
      expect(peer.take()[0].code).toBe(Code.CHANGED);
    });
  });

  describe('Block1 uploads (RFC 7959 §2.5)', () => {
    const body = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    function block1(
      num: number,
      more: boolean,
      szx: number,
      payload: Buffer,
      token?: Buffer,
      extra: OptionEntry[] = [],
    ) {
      return req(
        MessageType.CON,
        Code.POST,
        [
          [Option.URI_PATH, 'up'],
          [Option.URI_QUERY, 'id=a'],
          [Option.BLOCK1, encodeBlock(num, more, szx)],
          ...extra,
        ],
        payload,
        undefined,
        token,
      );
    }

    it('reassembles blocks sent with a new token each (as libcoap does), answering 2.31 until the last', () => {
      for (let n = 0; n < 5; n++) {
        const last = n === 4;
        endpoint.receive(block1(n, !last, 2, body.subarray(n * 64, (n + 1) * 64), Buffer.from([n])), peer);
        const [res] = peer.take();
        expect(res.code).toBe(last ? Code.CHANGED : Code.CONTINUE);
        expect(decodeBlock(res.uint(Option.BLOCK1) as number)).toEqual({ num: n, more: !last, szx: 2 });
      }
      expect(handler.seen).toHaveLength(1);
      expect(handler.seen[0].payload).toEqual(body);
      expect(handler.seen[0].blocks).toBe(5);
    });

    it('answers 4.08 to a block out of order and to a transfer it does not know', () => {
      endpoint.receive(block1(0, true, 2, body.subarray(0, 64)), peer);
      peer.take();
      endpoint.receive(block1(2, true, 2, body.subarray(128, 192)), peer);
      expect(peer.take()[0].code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      endpoint.receive(block1(1, true, 2, body.subarray(64, 128)), peer);
      expect(peer.take()[0].code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      expect(handler.seen).toHaveLength(0);
    });

    it('answers 4.13 with Size1 when the announced or the actual size is over the limit', () => {
      endpoint.receive(block1(0, true, 6, Buffer.alloc(1024), undefined, [[Option.SIZE1, 10_000]]), peer);
      let [res] = peer.take();
      expect(res.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
      expect(res.uint(Option.SIZE1)).toBe(4096);
      for (let n = 0; n < 4; n++) endpoint.receive(block1(n, true, 6, Buffer.alloc(1024)), peer);
      expect(peer.take().map((m) => m.code)).toEqual([
        Code.CONTINUE,
        Code.CONTINUE,
        Code.CONTINUE,
        Code.CONTINUE,
      ]);
      endpoint.receive(block1(4, false, 6, Buffer.alloc(10)), peer);
      [res] = peer.take();
      expect(res.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
      expect(res.uint(Option.SIZE1)).toBe(4096);
      expect(handler.seen).toHaveLength(0);
    });

    it('follows a smaller block size it asked for (late negotiation)', () => {
      make({ blockwise: { ...options().blockwise, preferredBlockSize: 64 } });
      endpoint.receive(block1(0, true, 4, body.subarray(0, 256)), peer);
      const [cont] = peer.take();
      expect(decodeBlock(cont.uint(Option.BLOCK1) as number)).toEqual({ num: 0, more: true, szx: 2 });
      // The client continues at 64-byte blocks: 256 bytes were taken, so the next NUM is 4.
      endpoint.receive(block1(4, false, 2, body.subarray(256)), peer);
      expect(peer.take()[0].code).toBe(Code.CHANGED);
      expect(handler.seen[0].payload).toEqual(body);
    });

    it('answers 4.00 to a non-final block of the wrong size', () => {
      endpoint.receive(block1(0, true, 2, Buffer.alloc(10)), peer);
      expect(peer.take()[0].code).toBe(Code.BAD_REQUEST);
    });

    it('caps transfers in progress, evicting the stalest', () => {
      for (let i = 0; i < 15; i++) {
        endpoint.receive(
          req(
            MessageType.CON,
            Code.POST,
            [
              [Option.URI_PATH, `p${i}`],
              [Option.BLOCK1, encodeBlock(0, true, 2)],
            ],
            Buffer.alloc(64),
          ),
          peer,
        );
      }
      expect(endpoint.stats.block1).toBe(10);
    });
  });

  describe('Block2 responses (RFC 7959 §2.4)', () => {
    const big = Buffer.from(Array.from({ length: 2500 }, (_, i) => (i * 13) & 0xff));

    it('sends block 0 with M and Size2 when the response is larger than the block size, and serves later blocks', () => {
      handler.answer = () => ({ code: Code.CONTENT, payload: big, contentFormat: 42 });
      endpoint.receive(req(MessageType.CON, Code.GET, [[Option.URI_PATH, 'fw']]), peer);
      let [res] = peer.take();
      expect(decodeBlock(res.uint(Option.BLOCK2) as number)).toEqual({ num: 0, more: true, szx: 6 });
      expect(res.uint(Option.SIZE2)).toBe(2500);
      expect(res.payload).toEqual(big.subarray(0, 1024));
      // Late negotiation: the client asks for 256-byte blocks from here on (NUM in the new size).
      const got = [res.payload];
      for (let num = 4; ; num++) {
        endpoint.receive(
          req(MessageType.CON, Code.GET, [
            [Option.URI_PATH, 'fw'],
            [Option.BLOCK2, encodeBlock(num, false, 4)],
          ]),
          peer,
        );
        [res] = peer.take();
        const b = decodeBlock(res.uint(Option.BLOCK2) as number);
        expect(b.num).toBe(num);
        got.push(res.payload);
        if (!b.more) break;
      }
      expect(Buffer.concat(got)).toEqual(big);
    });

    it('honours the client SZX from the first request (early negotiation)', () => {
      handler.answer = () => ({ code: Code.CONTENT, payload: big });
      endpoint.receive(
        req(MessageType.CON, Code.GET, [
          [Option.URI_PATH, 'fw'],
          [Option.BLOCK2, encodeBlock(0, false, 1)],
        ]),
        peer,
      );
      const [res] = peer.take();
      expect(decodeBlock(res.uint(Option.BLOCK2) as number)).toEqual({ num: 0, more: true, szx: 1 });
      expect(res.payload.length).toBe(32);
    });

    it('answers 4.02 for a block past the end', () => {
      handler.answer = () => ({ code: Code.CONTENT, payload: big });
      endpoint.receive(
        req(MessageType.CON, Code.GET, [
          [Option.URI_PATH, 'fw'],
          [Option.BLOCK2, encodeBlock(3, false, 6)],
        ]),
        peer,
      );
      expect(peer.take()[0].code).toBe(Code.BAD_OPTION);
    });

    it('holds a large POST response so later blocks do not run the request again', () => {
      handler.answer = () => ({ code: Code.CHANGED, payload: big });
      endpoint.receive(req(MessageType.CON, Code.POST, [[Option.URI_PATH, 'up']], Buffer.from('u')), peer);
      let [res] = peer.take();
      expect(res.payload.length).toBe(1024);
      endpoint.receive(
        req(MessageType.CON, Code.POST, [
          [Option.URI_PATH, 'up'],
          [Option.BLOCK2, encodeBlock(1, false, 6)],
        ]),
        peer,
      );
      [res] = peer.take();
      expect(res.code).toBe(Code.CHANGED);
      expect(res.payload).toEqual(big.subarray(1024, 2048));
      expect(handler.seen).toHaveLength(1);
    });
  });

  describe('blocks of transfers held elsewhere (another replica)', () => {
    class OrphanHandler extends TestHandler {
      readonly orphans: Exchange[] = [];
      orphanAnswer: (ex: Exchange) => CoapResponse = () => ({ code: Code.CHANGED });
      handleOrphanedBlock(ex: Exchange): void {
        this.orphans.push(ex);
        ex.respond(this.orphanAnswer(ex));
      }
    }
    let orphan: OrphanHandler;
    const post = (extra: OptionEntry[], payload = Buffer.from('p'), messageId?: number) =>
      req(MessageType.CON, Code.POST, [[Option.URI_PATH, 'up'], ...extra], payload, messageId);

    beforeEach(() => {
      orphan = new OrphanHandler();
      handler = orphan;
      make();
    });

    it('hands the last block of an upload it holds nothing of to the handler, with that block alone', () => {
      const last = Buffer.alloc(20, 7);
      endpoint.receive(post([[Option.BLOCK1, encodeBlock(3, false, 2)]], last), peer);
      const [res] = peer.take();
      expect(res.code).toBe(Code.CHANGED);
      expect(decodeBlock(res.uint(Option.BLOCK1) as number)).toEqual({ num: 3, more: false, szx: 2 });
      expect(orphan.orphans).toHaveLength(1);
      expect(orphan.orphans[0].payload).toEqual(last);
      expect(orphan.seen).toHaveLength(0);
    });

    it('answers a middle block it holds nothing of with 4.08 itself', () => {
      endpoint.receive(post([[Option.BLOCK1, encodeBlock(2, true, 2)]], Buffer.alloc(64)), peer);
      const [res] = peer.take();
      expect(res.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      expect(res.uint(Option.BLOCK1)).toBe(encodeBlock(2, true, 2));
      expect(orphan.orphans).toHaveLength(0);
    });

    it('passes on the handler’s 4.08, and repeats its answer to a retransmission without asking again', () => {
      orphan.orphanAnswer = () => ({
        code: Code.REQUEST_ENTITY_INCOMPLETE,
        payload: Buffer.from('start over'),
      });
      const datagram = post([[Option.BLOCK1, encodeBlock(1, false, 2)]], Buffer.alloc(5), 0x7001);
      endpoint.receive(datagram, peer);
      endpoint.receive(datagram, peer);
      const [first, again] = peer.take();
      expect(first.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      expect(again.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      expect(orphan.orphans).toHaveLength(1);
    });

    it('hands a later Block2 block of a POST response it does not hold to the handler, and slices its answer', () => {
      const big = Buffer.from(Array.from({ length: 2500 }, (_, i) => (i * 7) & 0xff));
      orphan.orphanAnswer = () => ({ code: Code.CHANGED, payload: big });
      endpoint.receive(post([[Option.BLOCK2, encodeBlock(1, false, 6)]]), peer);
      let [res] = peer.take();
      expect(res.code).toBe(Code.CHANGED);
      expect(decodeBlock(res.uint(Option.BLOCK2) as number)).toEqual({ num: 1, more: true, szx: 6 });
      expect(res.payload).toEqual(big.subarray(1024, 2048));
      // Now held here: the next block is served without the handler.
      endpoint.receive(post([[Option.BLOCK2, encodeBlock(2, false, 6)]]), peer);
      [res] = peer.take();
      expect(res.payload).toEqual(big.subarray(2048));
      expect(orphan.orphans).toHaveLength(1);
      expect(orphan.seen).toHaveLength(0);
    });

    it('without the handler method both are 4.08', () => {
      handler = new TestHandler();
      make();
      endpoint.receive(post([[Option.BLOCK1, encodeBlock(3, false, 2)]]), peer);
      endpoint.receive(post([[Option.BLOCK2, encodeBlock(1, false, 6)]]), peer);
      const [a, b] = peer.take();
      expect(a.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      expect(b.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      expect(b.payload.toString()).toMatch(/No response body is held/);
      expect(handler.seen).toHaveLength(0);
    });
  });

  it('exposes its metrics', async () => {
    endpoint.receive(req(MessageType.CON, Code.POST), peer);
    const text = await metrics.metrics();
    expect(text).toMatch(/cellgate_coap_requests_total\{method="POST",code="2.04"\} 1/);
    expect(text).toMatch(/cellgate_coap_datagrams_received_total 1/);
    expect(text).toMatch(/cellgate_coap_cache_entries\{cache="dedup"\} 1/);
  });
});
