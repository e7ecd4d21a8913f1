/**
 * A UDP relay between test clients and a server that loses datagrams on purpose, like a radio link. Each client
 * address gets its own upstream socket, so the server sees one source port per client, as behind a NAT.
 *
 * What happens to a datagram is decided in one of two ways. Seeded impairments lose, duplicate and reorder
 * datagrams in both directions: each flow (client) and direction draws from its own stream, so the n-th
 * datagram of a flow meets the same fate whatever the timing of the others, and losses come in bursts of at
 * most `maxConsecutiveDrops`, so a peer that retransmits enough always gets through. A drop rule instead decides
 * per datagram and direction, and forwards what it keeps at once.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { prng } from './prng.js';

export type Direction = 'up' | 'down';

/** Decides whether a datagram is dropped. */
export type DropRule = (dir: Direction, data: Buffer) => boolean;

/** Sees every datagram that reaches the relay, with the client it belongs to and whether it was dropped. */
export type RelayObserver = (dir: Direction, data: Buffer, client: string, dropped: boolean) => void;

export interface SeededImpairments {
  seed: number;
  /** Probability that a datagram is dropped. */
  loss: number;
  /** Probability that a datagram is sent twice. */
  duplicate: number;
  /** Probability that a datagram is held back for up to `maxDelayMs` (so later ones overtake it). */
  reorder: number;
  maxDelayMs?: number;
  /** Longest run of datagrams dropped in a row, per flow and direction (default 2). */
  maxConsecutiveDrops?: number;
}

export type LossyRelayOptions = { targetPort: number; targetHost?: string } & (
  SeededImpairments | { drop: DropRule }
);

export interface LossyRelayStats {
  forwarded: number;
  dropped: number;
  duplicated: number;
  delayed: number;
  /** `dropped`, by direction. */
  droppedBy: Record<Direction, number>;
}

/** A flow's state in one direction: its random stream (seeded impairments) and its current run of drops. */
interface Stream {
  rand: () => number;
  drops: number;
}

interface Flow {
  socket: Socket;
  up: Stream;
}

/**
 * A drop rule that loses the first transmission of a datagram with probability `p` and lets every
 * retransmission through (a CoAP message is known by its first four bytes: header, code and Message ID).
 */
export function dropFirstTransmissions(rand: () => number, p: number): DropRule {
  const seen = new Set<string>();
  return (dir, data) => {
    const key = dir + data.subarray(0, 4).toString('hex');
    if (seen.has(key)) return false;
    seen.add(key);
    return rand() < p;
  };
}

export class LossyRelay {
  readonly stats: LossyRelayStats = {
    forwarded: 0,
    dropped: 0,
    duplicated: 0,
    delayed: 0,
    droppedBy: { up: 0, down: 0 },
  };
  observe: RelayObserver | undefined = undefined;
  private readonly front = createSocket('udp4');
  private readonly flows = new Map<string, Flow>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly targetHost: string;

  private constructor(private readonly opts: LossyRelayOptions) {
    this.targetHost = opts.targetHost ?? '127.0.0.1';
    this.front.on('message', (data, rinfo) => this.fromClient(data, rinfo));
  }

  static async start(opts: LossyRelayOptions): Promise<LossyRelay> {
    const r = new LossyRelay(opts);
    await new Promise<void>((resolve) => r.front.bind(0, '127.0.0.1', () => resolve()));
    return r;
  }

  get port(): number {
    return this.front.address().port;
  }

  private fromClient(data: Buffer, client: RemoteInfo): void {
    const key = `${client.address}:${client.port}`;
    let flow = this.flows.get(key);
    if (!flow) {
      const n = this.flows.size;
      const seed = 'seed' in this.opts ? this.opts.seed * 7919 : 0;
      const down: Stream = { rand: prng(seed + 2 * n + 1), drops: 0 };
      const socket = createSocket('udp4');
      socket.on('message', (back) =>
        this.pass('down', down, back, key, (m) => this.front.send(m, client.port, client.address)),
      );
      socket.on('error', () => undefined);
      socket.bind(0, '127.0.0.1');
      flow = { socket, up: { rand: prng(seed + 2 * n), drops: 0 } };
      this.flows.set(key, flow);
    }
    const socket = flow.socket;
    this.pass('up', flow.up, data, key, (m) => socket.send(m, this.opts.targetPort, this.targetHost));
  }

  /** Sends `msg` on through the drop rule or the seeded impairments of stream `st`. */
  private pass(dir: Direction, st: Stream, msg: Buffer, client: string, out: (m: Buffer) => void): void {
    const opts = this.opts;
    if ('drop' in opts) {
      const drop = opts.drop(dir, msg);
      this.observe?.(dir, msg, client, drop);
      if (drop) this.count(dir);
      else {
        this.stats.forwarded++;
        out(msg);
      }
      return;
    }
    const rand = st.rand;
    if (rand() < opts.loss && st.drops < (opts.maxConsecutiveDrops ?? 2)) {
      st.drops++;
      this.observe?.(dir, msg, client, true);
      this.count(dir);
      return;
    }
    this.observe?.(dir, msg, client, false);
    st.drops = 0;
    const copies = rand() < opts.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      if (rand() < opts.reorder) {
        this.stats.delayed++;
        const t = setTimeout(
          () => {
            this.timers.delete(t);
            out(msg);
          },
          1 + Math.floor(rand() * (opts.maxDelayMs ?? 50)),
        );
        this.timers.add(t);
      } else {
        out(msg);
      }
      this.stats.forwarded++;
    }
  }

  private count(dir: Direction): void {
    this.stats.dropped++;
    this.stats.droppedBy[dir]++;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    const all = [this.front, ...[...this.flows.values()].map((f) => f.socket)];
    await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
