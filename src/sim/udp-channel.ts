/** A device's UDP socket to the gateway; `rebind()` moves it to a new source port, as a carrier NAT does. */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import type { DatagramChannel } from './coap-client.js';

/** Resolves a host name once, so sends do not look it up per datagram. */
export async function resolveHost(host: string): Promise<string> {
  return (await lookup(host)).address;
}

export class UdpChannel implements DatagramChannel {
  onDatagram: ((data: Buffer) => void) | undefined = undefined;
  onUnreachable: (() => void) | undefined = undefined;
  private socket: Socket;
  /** Source ports used so far (1 + rebinds). */
  bindings = 0;

  private constructor(
    readonly address: string,
    readonly port: number,
  ) {
    this.socket = this.open();
  }

  /** Opens a socket on an ephemeral port towards `address:port` (an IP address). */
  static async open(address: string, port: number): Promise<UdpChannel> {
    const c = new UdpChannel(address, port);
    await c.bound();
    return c;
  }

  private open(): Socket {
    const socket = createSocket(isIPv6(this.address) ? 'udp6' : 'udp4');
    socket.on('message', (data) => this.onDatagram?.(data));
    // The socket is connected to the gateway, so the kernel reports a closed port (ICMP port unreachable)
    // as ECONNREFUSED: nothing listens there. Other errors (a full buffer) are a lost datagram, as on the air.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.onUnreachable?.();
    });
    this.bindings++;
    return socket;
  }

  /** Binds an ephemeral port and connects to the gateway (so a closed port is reported, not waited for). */
  private bound(): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve) =>
      socket.bind(0, () => socket.connect(this.port, this.address, () => resolve())),
    );
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  send(data: Buffer): void {
    try {
      this.socket.send(data);
    } catch {
      // The socket is being replaced (rebind) or closed: the datagram is lost, as on the air.
    }
  }

  /** Comes back from a new source port; the old one is closed. */
  async rebind(): Promise<void> {
    const old = this.socket;
    this.socket = this.open();
    await this.bound();
    old.close();
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
