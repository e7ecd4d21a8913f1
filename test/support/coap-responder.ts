/**
 * A minimal CoAP answering machine for DTLS tests and benchmarks, standing in for the gateway's engine:
 * a confirmable request gets a piggybacked ACK (2.04 for POST/PUT, 2.05 "ok" for GET) with its token.
 * Anything that is not a CoAP request is echoed back unchanged (raw clients such as openssl s_client).
 */
import { Code, MessageType } from '../../src/coap/constants.js';
import { encodeMessage, parseMessage } from '../../src/coap/message.js';
import type { Peer } from '../../src/transport/peer.js';

/** The piggybacked response to a CoAP CON request, or undefined when `data` is not one. */
export function coapAck(data: Buffer): Buffer | undefined {
  const m = parseMessage(data);
  if ('reason' in m || m.type !== MessageType.CON || !m.isRequest) return undefined;
  return encodeMessage({
    type: MessageType.ACK,
    code: m.code === Code.GET ? Code.CONTENT : Code.CHANGED,
    messageId: m.messageId,
    token: m.token,
    payload: m.code === Code.GET ? Buffer.from('ok') : undefined,
  });
}

/** onApplicationData for tests: answer CoAP requests, echo everything else. */
export function answer(data: Buffer, peer: Peer): void {
  peer.send(coapAck(data) ?? data);
}
