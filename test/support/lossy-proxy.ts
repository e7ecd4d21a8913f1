/**
 * A UDP proxy that loses, duplicates and reorders datagrams in both directions, with seeded randomness so a
 * failure reproduces: each flow (client) and direction draws from its own stream, so the n-th datagram of a
 * flow meets the same fate whatever the timing of the others. Losses come in bursts of at most
 * `maxConsecutiveDrops`, so a peer that retransmits enough always gets through. Each client address gets its
 * own upstream socket, so the server sees one source port per client, as behind a NAT.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { prng } from './prng.js';

export interface LossyProxyOptions {
  targetPort: number;
  targetHost?: string;
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

export interface LossyProxyStats {
  forwarded: number;
  dropped: number;
  duplicated: number;
  delayed: number;
}

export interface LossyProxy {
  readonly port: number;
  readonly stats: LossyProxyStats;
  close(): Promise<void>;
}

interface Stream {
  rand: () => number;
  drops: number;
}

export async function startLossyProxy(opts: LossyProxyOptions): Promise<LossyProxy> {
  const host = opts.targetHost ?? '127.0.0.1';
  const maxDelay = opts.maxDelayMs ?? 50;
  const maxDrops = opts.maxConsecutiveDrops ?? 2;
  const stats: LossyProxyStats = { forwarded: 0, dropped: 0, duplicated: 0, delayed: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const flows = new Map<string, { socket: Socket; out: Stream }>();
  const front = createSocket('udp4');

  /** Sends `msg` through the impairments of stream `st`. */
  const impair = (st: Stream, msg: Buffer, out: (m: Buffer) => void): void => {
    const rand = st.rand;
    if (rand() < opts.loss && st.drops < maxDrops) {
      st.drops++;
      stats.dropped++;
      return;
    }
    st.drops = 0;
    const copies = rand() < opts.duplicate ? 2 : 1;
    if (copies === 2) stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      if (rand() < opts.reorder) {
        stats.delayed++;
        const t = setTimeout(
          () => {
            timers.delete(t);
            out(msg);
          },
          1 + Math.floor(rand() * maxDelay),
        );
        timers.add(t);
      } else {
        out(msg);
      }
      stats.forwarded++;
    }
  };

  const upstream = (client: RemoteInfo): { socket: Socket; out: Stream } => {
    const key = `${client.address}/${client.port}`;
    let flow = flows.get(key);
    if (!flow) {
      const n = flows.size;
      const back: Stream = { rand: prng(opts.seed * 7919 + 2 * n + 1), drops: 0 };
      const socket = createSocket('udp4');
      socket.on('message', (m) => impair(back, m, (x) => front.send(x, client.port, client.address)));
      socket.bind(0, '127.0.0.1');
      flow = { socket, out: { rand: prng(opts.seed * 7919 + 2 * n), drops: 0 } };
      flows.set(key, flow);
    }
    return flow;
  };

  front.on('message', (m, rinfo) => {
    const up = upstream(rinfo);
    impair(up.out, m, (x) => up.socket.send(x, opts.targetPort, host));
  });
  await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', () => resolve()));

  return {
    port: front.address().port,
    stats,
    async close() {
      for (const t of timers) clearTimeout(t);
      const all = [front, ...[...flows.values()].map((f) => f.socket)];
      await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
