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
    // A closed port on the far side (ICMP unreachable) or a full buffer is a lost datagram, as on the air.
    socket.on('error', () => undefined);
    this.bindings++;
    return socket;
  }

  private bound(): Promise<void> {
    return new Promise((resolve) => this.socket.bind(0, () => resolve()));
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  send(data: Buffer): void {
    this.socket.send(data, this.port, this.address);
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
