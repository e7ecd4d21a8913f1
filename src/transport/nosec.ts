/**
 * The NoSec CoAP listener: one UDP socket feeding the CoAP endpoint. A NoSec peer is its address; the peer
 * table only keeps each address's Message ID counter between messages.
 *
 * The table is generational: lookups find a peer in the current or previous generation (promoting it); every
 * `idleMs` the previous generation is dropped. A peer idle for two generations is forgotten, without a
 * timestamp per packet or a scan of the table. A cap on entries rotates generations early.
 */
import type { Socket, RemoteInfo } from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { Peer } from './peer.js';

export interface DatagramSink {
  receive(data: Buffer, peer: Peer): void;
}

export class NoSecPeer implements Peer {
  readonly transport = 'coap' as const;
  nextMessageId: number;

  constructor(
    readonly key: string,
    readonly address: string,
    readonly port: number,
    private readonly socket: Socket,
  ) {
    this.nextMessageId = randomInt(0x10000);
  }

  send(message: Buffer): void {
    this.socket.send(message, this.port, this.address);
  }
}

export interface NoSecOptions {
  maxPeers: number;
  idleMs: number;
  onCap: (n: number) => void;
  /** A socket error (e.g. a send the kernel refused); the listener keeps running. */
  onSocketError?: (err: Error) => void;
}

export class NoSecListener {
  private current = new Map<string, NoSecPeer>();
  private previous = new Map<string, NoSecPeer>();
  private readonly rotation: NodeJS.Timeout;
  private readonly onMessage: (data: Buffer, rinfo: RemoteInfo) => void;
  private readonly onError: (err: Error) => void;
  /** Datagrams from source port 0: nothing can be sent back to them (a spoofed or broken sender). */
  portZero = 0;
  socketErrors = 0;

  constructor(
    readonly socket: Socket,
    private readonly sink: DatagramSink,
    private readonly opts: NoSecOptions,
  ) {
    this.onMessage = (data, rinfo) => {
      if (rinfo.port === 0) {
        this.portZero++;
        return;
      }
      this.sink.receive(data, this.peer(rinfo.address, rinfo.port));
    };
    this.onError = (err) => {
      this.socketErrors++;
      this.opts.onSocketError?.(err);
    };
    socket.on('message', this.onMessage);
    socket.on('error', this.onError);
    this.rotation = setInterval(() => this.rotate(), opts.idleMs);
    this.rotation.unref();
  }

  get port(): number {
    return this.socket.address().port;
  }

  get peerCount(): number {
    return this.current.size + this.previous.size;
  }

  peer(address: string, port: number): NoSecPeer {
    const key = `udp:${address}:${port}`;
    let p = this.current.get(key);
    if (p !== undefined) return p;
    p = this.previous.get(key);
    if (p !== undefined) this.previous.delete(key);
    else p = new NoSecPeer(key, address, port, this.socket);
    if (this.current.size >= this.opts.maxPeers / 2) {
      this.opts.onCap(this.previous.size);
      this.rotate();
    }
    this.current.set(key, p);
    return p;
  }

  private rotate(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  close(): Promise<void> {
    clearInterval(this.rotation);
    this.socket.off('message', this.onMessage);
    return new Promise((resolve) =>
      this.socket.close(() => {
        this.socket.off('error', this.onError);
        resolve();
      }),
    );
  }
}
