/** A confirmable CoAP POST uplink, as the tests send them. */
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { encodeMessage, type OptionEntry } from '../../src/coap/message.js';

let nextMid = 0x4000;

/** A CON POST to `path` with Uri-Query entries; a new Message ID each time. */
export function conUplink(path: string, query: string[] = [], payload = 'x'): Buffer {
  const messageId = nextMid;
  nextMid = (nextMid + 1) & 0xffff;
  return encodeMessage({
    type: MessageType.CON,
    code: Code.POST,
    messageId,
    token: Buffer.from([messageId >> 8, messageId & 0xff]),
    options: [[Option.URI_PATH, path], ...query.map((q): OptionEntry => [Option.URI_QUERY, q])],
    payload: Buffer.from(payload),
  });
}
