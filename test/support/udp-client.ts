/** A bare UDP client for tests that need exact datagrams: send bytes, collect what comes back. */
import { createSocket, type Socket } from 'node:dgram';

export class UdpClient {
  readonly socket: Socket;
  private readonly inbox: Buffer[] = [];
  private waiting: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (m) => {
      this.inbox.push(m);
      this.waiting?.();
    });
  }

  static async open(address = '127.0.0.1'): Promise<UdpClient> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, address, () => r()));
    return new UdpClient(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(data: Buffer, port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(data, port, host, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** The next datagram, or undefined after `timeoutMs`. */
  async next(timeoutMs = 1000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiting = undefined;
    }
    return this.inbox.shift();
  }

  /** Sends and waits for one answer. */
  async request(data: Buffer, port: number, timeoutMs = 1000): Promise<Buffer | undefined> {
    await this.send(data, port);
    return this.next(timeoutMs);
  }

  /** Everything that arrives within `ms`. */
  async drain(ms: number): Promise<Buffer[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.inbox.splice(0);
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}
