/** The JSON document published for each uplink: what the publishers take, built by the gateway. */
import type { Credential, TransportName } from '../transport/peer.js';

export interface Envelope {
  /** Stable id of this uplink: the same on every publish attempt, so consumers can deduplicate. */
  messageId: string;
  deviceId: string;
  thing: string;
  /** ISO 8601 time the gateway received the (last block of the) request. */
  receivedAt: string;
  /** Request path without the leading slash (raw UDP: `udp.path`). */
  path: string;
  /** CoAP uplinks only. */
  method?: 'POST' | 'PUT';
  transport: TransportName;
  /** The DTLS credential the device authenticated with (absent on NoSec). */
  credential?: Credential;
  pskIdentity?: string;
  /** SHA-256 (hex) of the device's X.509 certificate or raw public key, for certificate credentials. */
  fingerprint?: string;
  remote: { address: string; port: number };
  /** CoAP uplinks only. */
  coap?: { type: 'CON' | 'NON'; messageId: number; token: string; blocks?: number };
  /** Raw UDP: what named the device (`udp.identity`). */
  identity?: 'dtls' | 'ip' | 'radius' | 'frame';
  /** Raw UDP: the uplink's frame counter, when it has one. */
  frameCounter?: number;
  /** The SIM and modem, as the carrier's RADIUS accounting (or else the device file) says. */
  imsi?: string;
  imei?: string;
  msisdn?: string;
  contentFormat: number | null;
  codec: string;
  /** Base64 of the whole (reassembled) request body. */
  raw: string;
  decoded: unknown;
  decodeError?: string;
  decodeWarnings?: readonly string[];
}
