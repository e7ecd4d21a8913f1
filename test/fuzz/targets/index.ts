/** Every fuzz target, in the order the runners take them. */
import type { AnyTarget } from '../target.js';
import { aesCcm } from './aes-ccm.js';
import { cborInput } from './cbor-input.js';
import { coapBlock } from './coap-block.js';
import { coapMessage } from './coap-message.js';
import { derCertificate } from './der-certificate.js';
import { dtlsHandshake } from './dtls-handshake.js';
import { dtlsHello } from './dtls-hello.js';
import { dtlsKeyExchange } from './dtls-key-exchange.js';
import { dtlsReassembly } from './dtls-reassembly.js';
import { dtlsRecord } from './dtls-record.js';
import { outboxRecord } from './outbox-record.js';
import { radiusAccounting } from './radius-accounting.js';
import { shadowDocument } from './shadow-document.js';
import { udpFrame } from './udp-frame.js';

export const TARGETS: readonly AnyTarget[] = [
  coapMessage,
  coapBlock,
  dtlsRecord,
  dtlsHello,
  dtlsKeyExchange,
  dtlsReassembly,
  dtlsHandshake,
  derCertificate,
  cborInput,
  outboxRecord,
  shadowDocument,
  udpFrame,
  radiusAccounting,
  aesCcm,
];
