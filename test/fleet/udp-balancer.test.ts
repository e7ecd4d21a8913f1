/**
 * The fleet tests' flow-hashing UDP balancer: a new flow per client address and port, each with its own
 * upstream 5-tuple, spread over the live targets by hash; replies only from the flow's target; flows
 * forgotten after the idle time; removed targets lose their flows, draining ones get no new flows.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { startUdpBalancer } from '../support/udp-balancer.js';

interface Pod {
  name: string;
  socket: Socket;
  port: number;
  /** Source ports seen, in order. */
  seen: number[];
}

/** A target that answers every datagram with `<name>:<source port>:<payload>`. */
async function startPod(name: string): Promise<Pod> {
  const socket = createSocket('udp4');
  const pod: Pod = { name, socket, port: 0, seen: [] };
  socket.on('message', (msg, from) => {
    pod.seen.push(from.port);
    socket.send(`${name}:${from.port}:${msg.toString()}`, from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  pod.port = socket.address().port;
  return pod;
}

interface Client {
  socket: Socket;
  port: number;
  /** Sends `text` through the balancer; resolves with the reply split into [pod, source port, payload]. */
  ask(text: string, timeoutMs?: number): Promise<[string, number, string]>;
  /** Replies no `ask` took. */
  unclaimed: string[];
  close(): void;
}

async function startClient(lbPort: number): Promise<Client> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const replies: string[] = [];
  let closed = false;
  const waiters: (() => void)[] = [];
  socket.on('message', (msg, from) => {
    expect(from.port).toBe(lbPort);
    replies.push(msg.toString());
    waiters.splice(0).forEach((w) => w());
  });
  return {
    socket,
    port: socket.address().port,
    unclaimed: replies,
    ask(text, timeoutMs = 2000) {
      socket.send(text, lbPort, '127.0.0.1');
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply to ${text}`)), timeoutMs);
        const check = () => {
          const i = replies.findIndex((r) => r.endsWith(`:${text}`));
          if (i < 0) return void waiters.push(check);
          clearTimeout(timer);
          const [pod, port, payload] = replies.splice(i, 1)[0].split(':');
          resolve([pod, Number(port), payload]);
        };
        check();
      });
    },
    close: () => {
      if (!closed) socket.close();
      closed = true;
    },
  };
}

const silence = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('UDP flow balancer', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup(pods: number, idleMs?: number) {
    const lb = await startUdpBalancer({ idleMs });
    cleanup.push(() => lb.close());
    const started: Pod[] = [];
    const ids = new Map<string, string>();
    for (let i = 0; i < pods; i++) {
      const pod = await startPod(`pod${i}`);
      cleanup.push(() => pod.socket.close());
      started.push(pod);
      ids.set(pod.name, lb.addTarget({ port: pod.port }));
    }
    const clients = async (n: number) => {
      const list: Client[] = [];
      for (let i = 0; i < n; i++) {
        const c = await startClient(lb.port);
        cleanup.push(() => c.close());
        list.push(c);
      }
      return list;
    };
    return { lb, pods: started, ids, clients };
  }

  it('pins each flow to one target with a 5-tuple of its own, and spreads flows over all targets', async () => {
    const { lb, pods, clients } = await setup(3);
    const list = await clients(60);
    const first = await Promise.all(list.map((c, i) => c.ask(`a${i}`)));
    const again = await Promise.all(list.map((c, i) => c.ask(`b${i}`)));
    const perPod = new Map<string, number>();
    const upstreamPorts = new Set<number>();
    first.forEach(([pod, port], i) => {
      // Same flow, same target and same upstream port; never the client's own port.
      expect(again[i][0]).toBe(pod);
      expect(again[i][1]).toBe(port);
      expect(port).not.toBe(list[i].port);
      upstreamPorts.add(port);
      perPod.set(pod, (perPod.get(pod) ?? 0) + 1);
    });
    expect(upstreamPorts.size).toBe(60);
    // 60 flows over 3 targets by hash: each gets a share (a fair hash puts fewer than 5 on one with p < 1e-4).
    expect([...perPod.keys()].sort()).toEqual(pods.map((p) => p.name));
    for (const n of perPod.values()) expect(n).toBeGreaterThanOrEqual(5);
    expect(lb.stats).toMatchObject({ flows: 60, forwarded: 120, returned: 120, dropped: 0 });
    expect([...lb.flowsPerTarget().values()].reduce((a, b) => a + b)).toBe(60);
  });

  it('makes a rebinding client a new flow, hashed afresh over the targets', async () => {
    const { clients } = await setup(3);
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const [c] = await clients(1);
      const [pod] = await c.ask(`x${i}`);
      seen.add(pod);
      c.close();
    }
    expect(seen.size).toBe(3);
  });

  it('forgets a flow after the idle time: the next datagram is a new flow with a new upstream port', async () => {
    const { lb, clients } = await setup(3, 150);
    const [c] = await clients(1);
    const [, port1] = await c.ask('one');
    await silence(50);
    const [, port2] = await c.ask('two');
    expect(port2).toBe(port1);
    await silence(400);
    expect(lb.stats.expired).toBe(1);
    expect([...lb.flowsPerTarget().values()].every((n) => n === 0)).toBe(true);
    const [, port3] = await c.ask('three');
    expect(port3).not.toBe(port1);
    expect(lb.stats.flows).toBe(2);
  });

  it('keeps a flow alive while replies flow, though the client only listens', async () => {
    const { lb, pods, clients } = await setup(1, 200);
    const [c] = await clients(1);
    const [, upstream] = await c.ask('hello');
    // The target keeps talking on the flow (a separate response, a retransmission) for longer than the idle time.
    for (let i = 0; i < 6; i++) {
      pods[0].socket.send(`pod0:${upstream}:tick${i}`, upstream, '127.0.0.1');
      await silence(60);
    }
    expect(lb.stats.expired).toBe(0);
    const [, again] = await c.ask('still');
    expect(again).toBe(upstream);
  });

  it('takes a removed target out: its flows go to the live targets, nothing new reaches it', async () => {
    const { lb, pods, ids, clients } = await setup(3);
    const list = await clients(30);
    const first = await Promise.all(list.map((c, i) => c.ask(`a${i}`)));
    const victim = first[0][0];
    const before = pods.find((p) => p.name === victim)!.seen.length;
    lb.removeTarget(ids.get(victim)!);
    expect(lb.liveTargets()).not.toContain(ids.get(victim));
    const moved = first.filter(([pod]) => pod === victim).length;
    expect(lb.stats.orphaned).toBe(moved);
    const after = await Promise.all(list.map((c, i) => c.ask(`b${i}`)));
    after.forEach(([pod, port], i) => {
      expect(pod).not.toBe(victim);
      // Flows of live targets stay where they were; the orphaned ones are new flows.
      if (first[i][0] !== victim) expect([pod, port]).toEqual(first[i].slice(0, 2));
      else expect(port).not.toBe(first[i][1]);
    });
    expect(pods.find((p) => p.name === victim)!.seen.length).toBe(before);
    expect(() => lb.removeTarget(ids.get(victim)!)).toThrow(/no balancer target/);
    expect(lb.flowsCreatedPerTarget().get(ids.get(victim)!)).toBe(moved);
  });

  it('sends no new flows to a draining target but keeps the flows it holds', async () => {
    const { lb, ids, clients } = await setup(2);
    const list = await clients(20);
    const first = await Promise.all(list.map((c, i) => c.ask(`a${i}`)));
    const drained = first[0][0];
    lb.drainTarget(ids.get(drained)!);
    const again = await Promise.all(list.map((c, i) => c.ask(`b${i}`)));
    again.forEach(([pod], i) => expect(pod).toBe(first[i][0]));
    const fresh = await clients(20);
    for (const [pod] of await Promise.all(fresh.map((c, i) => c.ask(`c${i}`)))) expect(pod).not.toBe(drained);
  });

  it('drops datagrams when no target is live, and replies from anything but the flow target', async () => {
    const { lb, pods, ids, clients } = await setup(1);
    const [c] = await clients(1);
    const [, upstream] = await c.ask('one');
    // Another socket writing to the flow's upstream port is not the target: dropped.
    const stray = await startPod('stray');
    cleanup.push(() => stray.socket.close());
    stray.socket.send('stray:0:spoof', upstream, '127.0.0.1');
    await silence(150);
    expect(c.unclaimed).toEqual([]);
    expect(lb.stats.strayReplies).toBe(1);
    lb.removeTarget(ids.get(pods[0].name)!);
    await expect(c.ask('two', 200)).rejects.toThrow(/no reply/);
    expect(lb.stats.dropped).toBe(1);
    // A target added later takes the next datagram.
    const pod = await startPod('late');
    cleanup.push(() => pod.socket.close());
    lb.addTarget({ port: pod.port });
    expect((await c.ask('three'))[0]).toBe('late');
  });

  it('caps the flows it holds', async () => {
    const lb = await startUdpBalancer({ maxFlows: 2 });
    cleanup.push(() => lb.close());
    const pod = await startPod('only');
    cleanup.push(() => pod.socket.close());
    lb.addTarget({ port: pod.port });
    const list: Client[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await startClient(lb.port);
      cleanup.push(() => c.close());
      list.push(c);
    }
    await list[0].ask('a');
    await list[1].ask('b');
    await expect(list[2].ask('c', 200)).rejects.toThrow(/no reply/);
    expect(lb.stats).toMatchObject({ flows: 2, dropped: 1 });
  });
});
