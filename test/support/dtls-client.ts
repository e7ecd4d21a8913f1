/**
 * A DTLS client on a UDP socket for tests and benchmarks: `DtlsClientCore` (src/dtls/client.ts) wrapped in a
 * socket that can move to a new source port; `connectDtls` runs the handshake.
 */
import { createSocket, type Socket } from 'node:dgram';
import { DtlsClientCore, type DtlsClientOptions } from '../../src/dtls/client.js';

export { DtlsClientCore, type DtlsClientOptions };

/** A DtlsClientCore on its own UDP socket. */
export class DtlsUdpClient {
  readonly core: DtlsClientCore;
  socket: Socket;

  constructor(
    opts: DtlsClientOptions,
    private readonly host: string,
    private readonly port: number,
  ) {
    this.core = new DtlsClientCore(opts, (d) => this.transmit(d));
    this.socket = this.open();
  }

  private open(): Socket {
    const s = createSocket('udp4');
    s.on('message', (m) => this.core.receive(m));
    s.bind(0, '127.0.0.1');
    return s;
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  transmit(datagram: Buffer, socket: Socket = this.socket): void {
    socket.send(datagram, this.port, this.host);
  }

  /** Moves to a new socket (new source port), as a NAT rebinding does; the old one is returned, still open. */
  async rebind(): Promise<Socket> {
    const old = this.socket;
    old.removeAllListeners('message');
    this.socket = this.open();
    await new Promise<void>((resolve) => this.socket.once('listening', () => resolve()));
    return old;
  }

  /** Sends `data` and waits for the next application data record. */
  async request(data: Buffer, timeoutMs = 3000): Promise<Buffer> {
    const reply = new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply')), timeoutMs);
      this.core.onData = (d) => {
        clearTimeout(t);
        this.core.onData = undefined;
        resolve(d);
      };
    });
    this.core.write(data);
    return reply;
  }

  close(notify = true): void {
    if (notify) this.core.close();
    else this.core.stop('closed');
    this.socket.close();
  }
}

/** Opens a UDP socket, runs the handshake with the server at host:port, and returns the connected client. */
export async function connectDtls(
  host: string,
  port: number,
  opts: DtlsClientOptions,
): Promise<DtlsUdpClient> {
  const client = new DtlsUdpClient(opts, host, port);
  await new Promise<void>((resolve) => client.socket.once('listening', () => resolve()));
  try {
    await client.core.handshake();
  } catch (err) {
    client.close(false);
    throw err;
  }
  return client;
}
