/**
 * A UDP relay between test clients and a gateway that loses datagrams on purpose, like a radio link. Each
 * client address gets its own upstream socket, so the gateway sees one peer per client. `drop` decides per
 * datagram and direction.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export type Direction = 'up' | 'down';

/** Sees every datagram that reaches the relay, with the client it belongs to and whether it was dropped. */
export type RelayObserver = (dir: Direction, data: Buffer, client: string, dropped: boolean) => void;

export class LossyRelay {
  private readonly front: Socket;
  private readonly upstream = new Map<string, Socket>();
  dropped = { up: 0, down: 0 };
  observe: RelayObserver | undefined = undefined;

  private constructor(
    private readonly target: { address: string; port: number },
    private readonly drop: (dir: Direction, data: Buffer) => boolean,
  ) {
    this.front = createSocket('udp4');
    this.front.on('message', (data, rinfo) => this.fromClient(data, rinfo));
  }

  static async start(
    targetPort: number,
    drop: (dir: Direction, data: Buffer) => boolean,
    targetAddress = '127.0.0.1',
  ): Promise<LossyRelay> {
    const r = new LossyRelay({ address: targetAddress, port: targetPort }, drop);
    await new Promise<void>((resolve) => r.front.bind(0, '127.0.0.1', () => resolve()));
    return r;
  }

  get port(): number {
    return this.front.address().port;
  }

  private fromClient(data: Buffer, client: RemoteInfo): void {
    const key = `${client.address}:${client.port}`;
    let up = this.upstream.get(key);
    if (!up) {
      const s = createSocket('udp4');
      s.on('message', (back) => {
        const drop = this.drop('down', back);
        this.observe?.('down', back, key, drop);
        if (drop) this.dropped.down++;
        else this.front.send(back, client.port, client.address);
      });
      s.on('error', () => undefined);
      s.bind(0, '127.0.0.1');
      this.upstream.set(key, s);
      up = s;
    }
    const drop = this.drop('up', data);
    this.observe?.('up', data, key, drop);
    if (drop) this.dropped.up++;
    else up.send(data, this.target.port, this.target.address);
  }

  async close(): Promise<void> {
    await Promise.all(
      [this.front, ...this.upstream.values()].map((s) => new Promise<void>((r) => s.close(() => r()))),
    );
  }
}
