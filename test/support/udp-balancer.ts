/**
 * A flow-hashing UDP load balancer, as an AWS Network Load Balancer treats UDP: each client address and port
 * is a flow; a new flow is pinned to one live target chosen by a hash over the flow and the live targets,
 * and gets an upstream socket of its own, so the target sees a new source address and port (a new 5-tuple)
 * for every flow. Replies go back to the client only from the target the flow is pinned to. A flow is
 * forgotten after `idleMs` without a datagram in either direction; the client's next datagram is then a new
 * flow, hashed afresh. A target that is removed (killed) loses its flows at once; a draining target keeps
 * the flows it has and gets no new ones. Loopback only; every count a fleet test needs is in `stats`.
 */
import { createHash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export interface UdpTarget {
  host?: string;
  port: number;
}

export interface UdpBalancerOptions {
  /** Forget a flow after this long without traffic (the NLB's UDP idle timeout is 120 s). */
  idleMs?: number;
  /** Most flows held at once; datagrams of further new flows are dropped and counted. */
  maxFlows?: number;
  /** Address the balancer listens on (default 127.0.0.1). */
  bind?: string;
}

export interface UdpBalancerStats {
  /** Flows created (a client address and port seen without a live flow). */
  flows: number;
  /** Flows forgotten after the idle time. */
  expired: number;
  /** Flows ended because their target was removed. */
  orphaned: number;
  /** Datagrams client → target. */
  forwarded: number;
  /** Datagrams target → client. */
  returned: number;
  /** Datagrams dropped: no live target, or the flow cap. */
  dropped: number;
  /** Datagrams on a flow's upstream socket from anything but its target. */
  strayReplies: number;
}

export interface UdpBalancer {
  readonly port: number;
  readonly stats: UdpBalancerStats;
  /** Adds a target; returns its id. New flows may be hashed onto it at once. */
  addTarget(target: UdpTarget): string;
  /** Takes a target out (killed, failed health check): its flows are forgotten, their sockets closed. */
  removeTarget(id: string): void;
  /** No new flows to this target; its current flows stay until they idle out or it is removed. */
  drainTarget(id: string): void;
  /** Ids of the targets new flows can go to. */
  liveTargets(): string[];
  /** Flows held now, per target id (targets not removed). */
  flowsPerTarget(): Map<string, number>;
  /** Flows created so far, per target id, removed targets included. */
  flowsCreatedPerTarget(): Map<string, number>;
  close(): Promise<void>;
}

interface Target {
  id: string;
  host: string;
  port: number;
  state: 'live' | 'draining' | 'removed';
  created: number;
}

interface Flow {
  client: RemoteInfo;
  target: Target;
  upstream: Socket;
  lastSeen: number;
}

/** Highest-random-weight (rendezvous) hashing: the flow goes to the target with the largest hash of both. */
function pick(flowKey: string, targets: Target[]): Target | undefined {
  let best: Target | undefined;
  let bestScore = -1;
  for (const t of targets) {
    const score = createHash('sha256').update(flowKey).update('\0').update(t.id).digest().readUInt32BE(0);
    if (score > bestScore) {
      best = t;
      bestScore = score;
    }
  }
  return best;
}

export async function startUdpBalancer(opts: UdpBalancerOptions = {}): Promise<UdpBalancer> {
  const idleMs = opts.idleMs ?? 120_000;
  const maxFlows = opts.maxFlows ?? 10_000;
  const bind = opts.bind ?? '127.0.0.1';
  const stats: UdpBalancerStats = {
    flows: 0,
    expired: 0,
    orphaned: 0,
    forwarded: 0,
    returned: 0,
    dropped: 0,
    strayReplies: 0,
  };
  const targets = new Map<string, Target>();
  const flows = new Map<string, Flow>();
  let nextId = 1;
  let closed = false;
  const front = createSocket('udp4');

  const endFlow = (key: string, flow: Flow): void => {
    flows.delete(key);
    flow.upstream.close();
  };

  const newFlow = (key: string, client: RemoteInfo): Flow | undefined => {
    if (flows.size >= maxFlows) return undefined;
    const live = [...targets.values()].filter((t) => t.state === 'live');
    // The hash covers the whole 5-tuple the balancer sees: protocol, client address and port, listener.
    const target = pick(`udp|${client.address}|${client.port}|${bind}|${front.address().port}`, live);
    if (!target) return undefined;
    const upstream = createSocket('udp4');
    const flow: Flow = { client: { ...client }, target, upstream, lastSeen: Date.now() };
    upstream.on('message', (msg, from) => {
      if (from.port !== flow.target.port || from.address !== flow.target.host) {
        stats.strayReplies++;
        return;
      }
      flow.lastSeen = Date.now();
      stats.returned++;
      front.send(msg, flow.client.port, flow.client.address);
    });
    upstream.on('error', () => undefined);
    upstream.bind(0, '127.0.0.1');
    flows.set(key, flow);
    target.created++;
    stats.flows++;
    return flow;
  };

  front.on('message', (msg, client) => {
    const key = `${client.address}:${client.port}`;
    const flow = flows.get(key) ?? newFlow(key, client);
    if (!flow) {
      stats.dropped++;
      return;
    }
    flow.lastSeen = Date.now();
    stats.forwarded++;
    flow.upstream.send(msg, flow.target.port, flow.target.host);
  });
  front.on('error', () => undefined);

  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [key, flow] of flows) {
        if (now - flow.lastSeen >= idleMs) {
          stats.expired++;
          endFlow(key, flow);
        }
      }
    },
    Math.max(10, Math.floor(idleMs / 4)),
  );
  sweep.unref();

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(0, bind, () => {
      front.off('error', reject);
      resolve();
    });
  });

  const target = (id: string): Target => {
    const t = targets.get(id);
    if (!t || t.state === 'removed') throw new Error(`no balancer target ${id}`);
    return t;
  };

  return {
    port: front.address().port,
    stats,
    addTarget(t: UdpTarget): string {
      const id = `t${nextId++}`;
      targets.set(id, { id, host: t.host ?? '127.0.0.1', port: t.port, state: 'live', created: 0 });
      return id;
    },
    removeTarget(id: string): void {
      const t = target(id);
      t.state = 'removed';
      for (const [key, flow] of flows) {
        if (flow.target === t) {
          stats.orphaned++;
          endFlow(key, flow);
        }
      }
    },
    drainTarget(id: string): void {
      target(id).state = 'draining';
    },
    liveTargets: () => [...targets.values()].filter((t) => t.state === 'live').map((t) => t.id),
    flowsPerTarget(): Map<string, number> {
      const held = new Map<string, number>();
      for (const t of targets.values()) if (t.state !== 'removed') held.set(t.id, 0);
      for (const f of flows.values()) held.set(f.target.id, (held.get(f.target.id) ?? 0) + 1);
      return held;
    },
    flowsCreatedPerTarget: () => new Map([...targets.values()].map((t) => [t.id, t.created])),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      for (const [key, flow] of flows) endFlow(key, flow);
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}
