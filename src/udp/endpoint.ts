/**
 * The raw UDP endpoint, sibling of the CoAP endpoint: every datagram of the raw NoSec socket, and every
 * application record of a raw DTLS session, is one uplink handed to the gateway as a RawDatagram. There is no
 * protocol on top: the datagram's bytes are the frame (see `frame.ts`), and a reply is one datagram (or record)
 * back to where the uplink came from. Outcomes are counted by listener.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { counterFromLabels, type MetricsRegistry } from '../ops/metrics.js';
import type { Credential, Peer } from '../transport/peer.js';

export type RawListenerName = 'udp' | 'udp-dtls';

/** What became of a datagram (label `outcome` of cellgate_udp_datagrams_total). */
export const DATAGRAM_OUTCOMES = [
  'published',
  'decode_failure',
  'unknown_device',
  'refused',
  'duplicate',
  'replay',
  'counter_reset',
  'counter_gap',
  'counter_cap',
  'confirmation',
  'publish_failed',
  'store_failed',
  'malformed',
  'too_large',
  'port_zero',
] as const;
export type DatagramOutcome = (typeof DATAGRAM_OUTCOMES)[number];

export interface RawDatagram {
  readonly listener: RawListenerName;
  /** The whole datagram (or decrypted record). */
  readonly bytes: Buffer;
  readonly address: string;
  readonly port: number;
  /** DTLS: the PSK identity and the device the session authenticated. */
  readonly pskIdentity: string | undefined;
  readonly deviceId: string | undefined;
  /** DTLS: the credential kind, and the fingerprint of a certificate or raw public key. */
  readonly credential: Credential | undefined;
  readonly fingerprint: string | undefined;
  /** ms since the epoch. */
  readonly receivedAt: number;
  /** Sends one datagram back (encrypted on a DTLS session). */
  reply(bytes: Buffer): void;
  /** Counts what became of the datagram; once per datagram. */
  outcome(o: DatagramOutcome): void;
}

export interface RawUplinkHandler {
  handleDatagram(d: RawDatagram): void;
}

class PlainDatagram implements RawDatagram {
  readonly listener = 'udp';
  readonly pskIdentity = undefined;
  readonly deviceId = undefined;
  readonly credential = undefined;
  readonly fingerprint = undefined;
  readonly receivedAt = Date.now();

  constructor(
    readonly bytes: Buffer,
    readonly address: string,
    readonly port: number,
    private readonly socket: Socket,
    private readonly endpoint: RawUdpEndpoint,
  ) {}

  reply(bytes: Buffer): void {
    this.socket.send(bytes, this.port, this.address);
  }

  outcome(o: DatagramOutcome): void {
    this.endpoint.count(0, o);
  }
}

class SecureDatagram implements RawDatagram {
  readonly listener = 'udp-dtls';
  readonly receivedAt = Date.now();
  readonly address: string;
  readonly port: number;

  constructor(
    readonly bytes: Buffer,
    private readonly peer: Peer,
    private readonly endpoint: RawUdpEndpoint,
  ) {
    this.address = peer.address;
    this.port = peer.port;
  }

  get pskIdentity(): string | undefined {
    return this.peer.pskIdentity;
  }

  get deviceId(): string | undefined {
    return this.peer.deviceId;
  }

  get credential(): Credential | undefined {
    return this.peer.credential;
  }

  get fingerprint(): string | undefined {
    return this.peer.fingerprint;
  }

  reply(bytes: Buffer): void {
    this.peer.send(bytes);
  }

  outcome(o: DatagramOutcome): void {
    this.endpoint.count(1, o);
  }
}

const LISTENERS: readonly RawListenerName[] = ['udp', 'udp-dtls'];

export class RawUdpEndpoint {
  /** Outcome counts: [listener][outcome]. */
  private readonly counts = LISTENERS.map(() => new Float64Array(DATAGRAM_OUTCOMES.length));
  private readonly outcomeIndex = new Map<string, number>(DATAGRAM_OUTCOMES.map((o, i) => [o, i]));

  constructor(
    private readonly handler: RawUplinkHandler,
    private readonly maxDatagramBytes: number,
    metrics: MetricsRegistry,
  ) {
    counterFromLabels(
      metrics,
      'cellgate_udp_datagrams_total',
      'Raw UDP datagrams by listener (udp, udp-dtls) and outcome.',
      ['listener', 'outcome'],
      () => this.samples(),
    );
  }

  private *samples(): Iterable<readonly [readonly string[], number]> {
    for (let l = 0; l < LISTENERS.length; l++)
      for (let o = 0; o < DATAGRAM_OUTCOMES.length; o++)
        yield [[LISTENERS[l], DATAGRAM_OUTCOMES[o]], this.counts[l][o]];
  }

  count(listener: number, outcome: DatagramOutcome): void {
    this.counts[listener][this.outcomeIndex.get(outcome) as number]++;
  }

  /** Count of one listener's outcome so far. */
  total(listener: RawListenerName, outcome: DatagramOutcome): number {
    return this.counts[LISTENERS.indexOf(listener)][this.outcomeIndex.get(outcome) as number];
  }

  /** A datagram of the raw NoSec socket. */
  receivePlain(bytes: Buffer, rinfo: RemoteInfo, socket: Socket): void {
    if (rinfo.port === 0) return this.count(0, 'port_zero');
    if (bytes.length > this.maxDatagramBytes) return this.count(0, 'too_large');
    this.handler.handleDatagram(new PlainDatagram(bytes, rinfo.address, rinfo.port, socket, this));
  }

  /** An application record of a raw DTLS session. */
  receiveSecure(bytes: Buffer, peer: Peer): void {
    if (bytes.length > this.maxDatagramBytes) return this.count(1, 'too_large');
    this.handler.handleDatagram(new SecureDatagram(bytes, peer, this));
  }
}

/** Feeds the raw NoSec socket's datagrams to the endpoint. */
export function listenPlain(
  socket: Socket,
  endpoint: RawUdpEndpoint,
  onError: (err: Error) => void,
): () => Promise<void> {
  const onMessage = (msg: Buffer, rinfo: RemoteInfo) => endpoint.receivePlain(msg, rinfo, socket);
  socket.on('message', onMessage);
  socket.on('error', onError);
  return () =>
    new Promise<void>((resolve) => {
      socket.off('message', onMessage);
      socket.close(() => resolve());
    });
}
