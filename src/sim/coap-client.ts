/**
 * A device-side CoAP client for the simulator (RFC 7252 messaging, RFC 7959 block-wise): confirmable
 * requests retransmitted with exponential back-off until acknowledged, separate responses acknowledged,
 * NON requests, Block1 uploads that follow the server's block size, and Block2 responses fetched to the end.
 * It speaks over any datagram channel: plain UDP or a DTLS session.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { blockSize, decodeBlock, encodeBlock, szxForSize } from '../coap/block-option.js';
import { Code, MessageType, Option } from '../coap/constants.js';
import {
  CoapMessage,
  encodeEmpty,
  encodeMessage,
  FormatError,
  parseMessage,
  type OptionEntry,
} from '../coap/message.js';

/** One device's datagram path to the gateway. */
export interface DatagramChannel {
  send(data: Buffer): void;
  /** Receives every datagram (the client sets it). */
  onDatagram: ((data: Buffer) => void) | undefined;
  /** Told when nothing listens at the gateway's address (ICMP port unreachable), if the channel can tell. */
  onUnreachable?: (() => void) | undefined;
}

export interface ClientTiming {
  /** ACK_TIMEOUT; the first retransmission comes after ACK_TIMEOUT × (1 … ACK_RANDOM_FACTOR). */
  ackTimeoutMs: number;
  ackRandomFactor: number;
  maxRetransmit: number;
  /** How long to wait for a separate response after an empty ACK, or for the answer to a NON request. */
  responseTimeoutMs: number;
}

export const DEFAULT_CLIENT_TIMING: ClientTiming = {
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  responseTimeoutMs: 30_000,
};

export interface UplinkRequest {
  confirmable: boolean;
  method: number;
  /** Uri-Path, without a leading slash ("telemetry" or "a/b"). */
  path: string;
  query: readonly string[];
  payload: Buffer;
  contentFormat?: number;
  /** Accept: the Content-Format the device wants downlinks in. */
  accept?: number;
  /** ETag of the last downlink received, echoed to confirm it (the gateway then counts it delivered). */
  etag?: Buffer;
  /** Block1 block size for bodies larger than one block (16 … 1024). */
  blockSize: number;
}

export type Outcome = 'ok' | 'error' | 'timeout' | 'reset' | 'unreachable';

export interface UplinkResult {
  outcome: Outcome;
  /** Code of the final response (0 when there was none). */
  code: number;
  /** Max-Age of an error response, if it carried one. */
  maxAge?: number;
  /** Payload of a successful response (reassembled from Block2 blocks): a downlink. */
  downlink?: Buffer;
  /** ETag of the response that carried the downlink. */
  etag?: Buffer;
  latencyMs: number;
  retransmissions: number;
  /** Request messages sent, not counting retransmissions (Block1 blocks, Block2 follow-ups). */
  messages: number;
  /**
   * The answer came as a separate response (not piggybacked on the ACK); for a timeout: the gateway had
   * acknowledged the request with an empty ACK, so a separate response was due.
   */
  separate: boolean;
}

interface Reply {
  outcome: 'ok' | 'timeout' | 'reset' | 'unreachable';
  response?: CoapMessage;
  separate: boolean;
  retransmissions: number;
}

/** One request message waiting for its answer. */
class PendingRequest {
  attempts = 0;
  timer: NodeJS.Timeout | undefined = undefined;
  acked = false;
  constructor(
    readonly messageId: number,
    readonly tokenKey: string,
    readonly bytes: Buffer,
    readonly confirmable: boolean,
    public timeoutMs: number,
    readonly settle: (reply: Reply) => void,
  ) {}
}

export class CoapClient {
  private nextMid = randomInt(0x10000);
  private readonly byMid = new Map<number, PendingRequest>();
  private readonly byToken = new Map<string, PendingRequest>();

  constructor(
    private channel: DatagramChannel,
    private readonly timing: ClientTiming = DEFAULT_CLIENT_TIMING,
  ) {
    this.attach(channel);
  }

  /** Moves to another channel (a new socket after a NAT rebinding, a new DTLS session). */
  attach(channel: DatagramChannel): void {
    if (this.channel !== channel) {
      this.channel.onDatagram = undefined;
      this.channel.onUnreachable = undefined;
    }
    this.channel = channel;
    channel.onDatagram = (data) => this.receive(data);
    channel.onUnreachable = () => this.unreachable();
  }

  /** Nothing listens at the gateway's address: what is pending ends now, not after its time-outs. */
  private unreachable(): void {
    for (const p of [...this.byToken.values()])
      p.settle({ outcome: 'unreachable', separate: false, retransmissions: p.attempts });
  }

  /** Exchanges still waiting for an answer. */
  get pending(): number {
    return this.byToken.size;
  }

  /** Sends an uplink: Block1 when the body is larger than one block, then Block2 to the end of the answer. */
  async uplink(req: UplinkRequest): Promise<UplinkResult> {
    const started = performance.now();
    const token = randomBytes(4);
    const base: OptionEntry[] = [];
    for (const seg of req.path.split('/')) if (seg !== '') base.push([Option.URI_PATH, seg]);
    for (const q of req.query) base.push([Option.URI_QUERY, q]);
    if (req.contentFormat !== undefined) base.push([Option.CONTENT_FORMAT, req.contentFormat]);
    if (req.accept !== undefined) base.push([Option.ACCEPT, req.accept]);
    if (req.etag !== undefined) base.push([Option.ETAG, req.etag]);
    let retransmissions = 0;
    let messages = 0;
    let separate = false;
    const finish = (outcome: Outcome, response?: CoapMessage, downlink?: Buffer): UplinkResult => ({
      outcome,
      code: response?.code ?? 0,
      maxAge: response && outcome === 'error' ? response.uint(Option.MAX_AGE) : undefined,
      downlink,
      etag: downlink && response ? response.opaque(Option.ETAG) : undefined,
      latencyMs: performance.now() - started,
      retransmissions,
      messages,
      separate,
    });
    const send = async (options: OptionEntry[], payload: Buffer | undefined): Promise<Reply> => {
      messages++;
      const reply = await this.exchange(req.confirmable, req.method, token, options, payload);
      retransmissions += reply.retransmissions;
      separate ||= reply.separate;
      return reply;
    };

    let szx = szxForSize(req.blockSize);
    let reply: Reply;
    if (req.payload.length <= blockSize(szx)) {
      reply = await send(base, req.payload);
    } else {
      let offset = 0;
      for (;;) {
        const size = blockSize(szx);
        const num = offset / size;
        const chunk = req.payload.subarray(offset, offset + size);
        const more = offset + chunk.length < req.payload.length;
        const options: OptionEntry[] = [...base, [Option.BLOCK1, encodeBlock(num, more, szx)]];
        if (num === 0) options.push([Option.SIZE1, req.payload.length]);
        reply = await send(options, chunk);
        if (reply.outcome !== 'ok') return finish(reply.outcome);
        const res = reply.response as CoapMessage;
        if (!more || res.code !== Code.CONTINUE) break;
        const b1 = res.uint(Option.BLOCK1);
        offset += size;
        // The server may ask for smaller blocks (RFC 7959 §2.5); the offset stays a multiple of them.
        if (b1 !== undefined) szx = Math.min(szx, decodeBlock(b1).szx);
      }
    }
    if (reply.outcome !== 'ok') return finish(reply.outcome);
    let res = reply.response as CoapMessage;
    if (res.code >> 5 !== 2) return finish('error', res);
    if (res.code === Code.CONTINUE) return finish('error', res);
    let body = res.payload.length > 0 ? Buffer.from(res.payload) : undefined;
    let b2 = res.uint(Option.BLOCK2);
    while (b2 !== undefined && decodeBlock(b2).more) {
      const block = decodeBlock(b2);
      const next: OptionEntry[] = [...base, [Option.BLOCK2, encodeBlock(block.num + 1, false, block.szx)]];
      reply = await send(next, undefined);
      if (reply.outcome !== 'ok') return finish(reply.outcome);
      res = reply.response as CoapMessage;
      if (res.code >> 5 !== 2) return finish('error', res);
      body = Buffer.concat([body ?? Buffer.alloc(0), res.payload]);
      b2 = res.uint(Option.BLOCK2);
    }
    return finish('ok', res, body);
  }

  /** One request message: sent, retransmitted while unacknowledged, answered piggybacked or separately. */
  private exchange(
    confirmable: boolean,
    method: number,
    token: Buffer,
    options: OptionEntry[],
    payload: Buffer | undefined,
  ): Promise<Reply> {
    const messageId = this.nextMid;
    this.nextMid = (messageId + 1) & 0xffff;
    const bytes = encodeMessage({
      type: confirmable ? MessageType.CON : MessageType.NON,
      code: method,
      messageId,
      token,
      options,
      payload,
    });
    const t = this.timing;
    return new Promise<Reply>((resolve) => {
      const key = token.toString('hex');
      const timeout = confirmable
        ? t.ackTimeoutMs * (1 + Math.random() * (t.ackRandomFactor - 1))
        : t.responseTimeoutMs;
      const p: PendingRequest = new PendingRequest(messageId, key, bytes, confirmable, timeout, (reply) => {
        clearTimeout(p.timer);
        this.byMid.delete(messageId);
        if (this.byToken.get(key) === p) this.byToken.delete(key);
        resolve(reply);
      });
      this.byMid.set(messageId, p);
      this.byToken.set(key, p);
      p.timer = setTimeout(onTimer, timeout, this, p);
      this.channel.send(bytes);
    });
  }

  /** A retransmission timer fired, or the wait for an answer ran out. */
  timer(p: PendingRequest): void {
    if (!p.confirmable || p.acked) {
      return p.settle({ outcome: 'timeout', separate: p.acked, retransmissions: p.attempts });
    }
    if (p.attempts >= this.timing.maxRetransmit) {
      return p.settle({ outcome: 'timeout', separate: false, retransmissions: p.attempts });
    }
    p.attempts++;
    p.timeoutMs *= 2;
    // After the last retransmission, wait the full doubled timeout (MAX_TRANSMIT_WAIT) before giving up.
    p.timer = setTimeout(onTimer, p.timeoutMs, this, p);
    this.channel.send(p.bytes);
  }

  /** Every datagram from the gateway. */
  receive(data: Buffer): void {
    const msg = parseMessage(data);
    if (msg instanceof FormatError) return;
    if (msg.type === MessageType.ACK || msg.type === MessageType.RST) {
      const p = this.byMid.get(msg.messageId);
      if (!p || p.acked) return;
      if (msg.type === MessageType.RST) {
        return p.settle({ outcome: 'reset', separate: false, retransmissions: p.attempts });
      }
      if (msg.code === Code.EMPTY) {
        // Empty ACK: the answer follows as a separate response (RFC 7252 §5.2.2).
        p.acked = true;
        clearTimeout(p.timer);
        p.timer = setTimeout(onTimer, this.timing.responseTimeoutMs, this, p);
        return;
      }
      if (msg.token.toString('hex') !== p.tokenKey) return;
      return p.settle({ outcome: 'ok', response: msg, separate: false, retransmissions: p.attempts });
    }
    if (!msg.isResponse) {
      // The gateway sends no requests; a confirmable one is answered with RST.
      if (msg.type === MessageType.CON) this.channel.send(encodeEmpty(MessageType.RST, msg.messageId));
      return;
    }
    // A separate response (CON or NON). Acknowledge a CON one even when it repeats an answer already taken.
    if (msg.type === MessageType.CON) this.channel.send(encodeEmpty(MessageType.ACK, msg.messageId));
    const p = this.byToken.get(msg.token.toString('hex'));
    if (!p) return;
    // The answer to a NON request always comes in a message of its own: it is not a separate response
    // (that is the answer to a CON request that was not piggybacked on its ACK).
    p.settle({ outcome: 'ok', response: msg, separate: p.confirmable, retransmissions: p.attempts });
  }

  /** Gives up on everything pending (the simulation ends). */
  abort(): void {
    for (const p of [...this.byToken.values()]) {
      p.settle({ outcome: 'timeout', separate: p.acked, retransmissions: p.attempts });
    }
  }
}

function onTimer(client: CoapClient, p: PendingRequest): void {
  client.timer(p);
}
