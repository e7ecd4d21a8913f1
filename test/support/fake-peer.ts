/** An in-process peer: collects what the endpoint sends to it. */
import { CoapMessage, FormatError, parseMessage } from '../../src/coap/message.js';
import type { Peer, TransportName } from '../../src/transport/peer.js';

export class FakePeer implements Peer {
  readonly sent: Buffer[] = [];
  nextMessageId = 1000;
  transport: TransportName = 'coap';

  constructor(
    readonly key = 'udp:10.0.0.1:5000',
    readonly address = '10.0.0.1',
    readonly port = 5000,
  ) {}

  send(message: Buffer): void {
    this.sent.push(message);
  }

  /** Parsed messages sent so far (and clears them). */
  take(): CoapMessage[] {
    return this.sent.splice(0).map((b) => {
      const m = parseMessage(b);
      if (m instanceof FormatError) throw new Error(`endpoint sent a malformed message: ${m.reason}`);
      return m;
    });
  }
}
