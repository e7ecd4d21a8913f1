/**
 * SIGTERM under load, against the real process: a child gateway with the file sink takes CON uplinks from
 * many devices over a lossy link (first transmissions of some requests, responses and ACKs are lost, so
 * retransmissions and unacknowledged separate responses are in flight when the signal comes), gets SIGTERM
 * mid-load, and must exit 0 within its deadline with every uplink it acknowledged in the file, none it
 * refused in it, and no exchange cut (every request answered: 2.04, or 5.03 with Max-Age once draining).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Code } from '../../src/coap/constants.js';
import { exitOnTermination, type Terminable } from '../../src/ops/shutdown.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CoapClient, type UplinkResult } from '../../src/sim/coap-client.js';
import { UdpChannel } from '../../src/sim/udp-channel.js';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.js';
import { IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';
import { dropFirstTransmissions, LossyRelay } from '../support/lossy-relay.js';
import { prng } from '../support/prng.js';

const DEVICES = 16;
const SHUTDOWN = { delayMs: 300, drainTimeoutMs: 3000, deadlineMs: 6000, retryAfterSeconds: 3 };

interface Sent {
  payload: string;
  at: number;
  result: UplinkResult;
}

/**
 * One device: uplinks back to back until the gateway refuses or stops answering. Its socket stays open (and
 * acknowledges late separate responses) until `linger` settles, as a device's radio stays up for a while.
 */
async function device(
  port: number,
  id: string,
  log: Sent[],
  linger: Promise<unknown>,
  paceMs = 0,
): Promise<void> {
  const channel = await UdpChannel.open('127.0.0.1', port);
  const client = new CoapClient(channel, {
    ackTimeoutMs: 200,
    ackRandomFactor: 1.5,
    maxRetransmit: 2,
    responseTimeoutMs: 3000,
  });
  try {
    for (let seq = 1; ; seq++) {
      const payload = `${id}/${seq}`;
      const at = Date.now();
      const result = await client.uplink({
        confirmable: true,
        method: Code.POST,
        path: 'load',
        query: [`id=${id}`],
        payload: Buffer.from(payload),
        blockSize: 1024,
      });
      log.push({ payload, at, result });
      if (result.outcome !== 'ok') break;
      if (paceMs) await new Promise((r) => setTimeout(r, paceMs));
    }
    await linger;
  } finally {
    await channel.close();
  }
}

describe('SIGTERM drain under load', () => {
  let gw: ChildGateway | undefined;
  afterEach(async () => {
    await gw?.cleanup();
    gw = undefined;
  });

  it.each([
    { mode: 'piggybacked responses', piggybackWindowMs: 1000 },
    { mode: 'separate responses (empty ACK first, CON response acknowledged later)', piggybackWindowMs: 0 },
  ])(
    'loses no acknowledged uplink and cuts no exchange: $mode',
    async ({ piggybackWindowMs }) => {
      const ids = Array.from({ length: DEVICES }, (_, i) => `load-${i}`);
      gw = await startChildGateway({
        devices: ids.map((id) => ({ id })),
        config: {
          coap: {
            bind: '127.0.0.1',
            port: 0,
            piggybackWindowMs,
            transmission: { ackTimeoutMs: 200 },
          },
          publisher: { type: 'file', path: 'uplinks.jsonl', fsync: true },
          shutdown: SHUTDOWN,
          log: { level: 'info' },
        },
      });
      // Lose the first transmission of one datagram in four each way; retransmissions get through.
      const relay = await LossyRelay.start({
        targetPort: gw.coapPort,
        drop: dropFirstTransmissions(prng(piggybackWindowMs + 7), 0.25),
      });
      // Requests that reached the gateway (first time, per client and Message ID), and the answers it sent
      // (whether or not the lossy link then delivered them).
      const delivered = new Map<string, number>();
      const answered = new Set<string>();
      relay.observe = (dir, data, client, dropped) => {
        const type = (data[0] >> 4) & 3;
        const key = `${client}#${data.readUInt16BE(2)}`;
        const request = type === 0 && data[1] >= 1 && data[1] <= 31;
        if (dir === 'up' && request && !dropped && !delivered.has(key)) delivered.set(key, Date.now());
        // An ACK (empty or with the response) or an RST answers the request with that Message ID.
        if (dir === 'down' && type >= 2) answered.add(key);
      };
      const sent: Sent[] = [];
      const load = Promise.all(ids.map((id) => device(relay.port, id, sent, gw!.exited)));
      await new Promise((r) => setTimeout(r, 700));
      const beforeSignal = sent.length;
      const signalAt = Date.now();
      gw.proc.kill('SIGTERM');
      const exit = await gw.exited;
      await load;
      await relay.close();
      expect(relay.stats.droppedBy.up).toBeGreaterThan(0);
      expect(relay.stats.droppedBy.down).toBeGreaterThan(0);

      expect(exit.code).toBe(0);
      expect(exit.at - signalAt).toBeLessThan(SHUTDOWN.deadlineMs);
      const stopped = gw.logs.find((l) => l.msg === 'stopped');
      expect(stopped?.drained).toBe(true);
      expect(beforeSignal).toBeGreaterThan(DEVICES); // there was load when the signal came

      const published = readFileSync(join(gw.dir, 'uplinks.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) =>
          Buffer.from((JSON.parse(l) as { payload: { raw: string } }).payload.raw, 'base64').toString(),
        );
      const inFile = new Set(published);
      expect(inFile.size).toBe(published.length); // published once each

      const acked = sent.filter((s) => s.result.outcome === 'ok');
      expect(acked.length).toBeGreaterThan(beforeSignal);
      for (const s of acked) {
        expect(s.result.code).toBe(Code.CHANGED);
        expect(inFile.has(s.payload), `acknowledged ${s.payload} is in the file`).toBe(true);
      }
      const sentPayloads = new Set(sent.map((s) => s.payload));
      for (const p of published) expect(sentPayloads.has(p), `${p} was sent`).toBe(true);

      // Answers while draining are 5.03 with the configured Max-Age, and never for an uplink that was taken.
      const refused = sent.filter((s) => s.result.outcome === 'error');
      for (const s of refused) {
        expect(s.result.code).toBe(Code.SERVICE_UNAVAILABLE);
        expect(s.result.maxAge).toBe(SHUTDOWN.retryAfterSeconds);
        // A retransmission of an uplink taken before draining gets its 2.04 again, never a 5.03.
        expect(inFile.has(s.payload), `refused ${s.payload} is not in the file`).toBe(false);
      }
      // No exchange cut: every request the gateway received before it began refusing new work was answered,
      // and an exchange it had taken up with an empty ACK always got its separate response.
      const refusingFrom =
        Date.parse(gw.logs.find((l) => l.msg === 'draining')?.time ?? '') + SHUTDOWN.delayMs;
      let checked = 0;
      for (const [key, at] of delivered) {
        if (at >= refusingFrom - 20) continue;
        checked++;
        expect(answered.has(key), `request ${key} was answered`).toBe(true);
      }
      expect(checked).toBeGreaterThan(beforeSignal);
      for (const s of sent.filter((x) => x.result.outcome === 'timeout')) {
        expect(s.result.separate, `${s.payload} was acknowledged empty and then cut`).toBe(false);
      }
      if (piggybackWindowMs === 0) expect(acked.every((s) => s.result.separate)).toBe(true);
    },
    30_000,
  );
});

describe('SIGTERM drain with AWS IoT Core (the IoT Data Plane test server, 60 ms per publish)', () => {
  let gw: ChildGateway | undefined;
  let server: IotDataPlaneServer | undefined;
  afterEach(async () => {
    await gw?.cleanup();
    await server?.close();
    gw = undefined;
    server = undefined;
  });

  it.each([
    {
      ack: 'after-publish',
      why: 'exchanges waiting for IoT Core finish before the process exits',
      publisher: {},
    },
    {
      ack: 'after-outbox',
      why: 'the outbox backlog is delivered before the process exits',
      publisher: { outbox: { dir: 'outbox', maxInFlight: 8, cursorIntervalMs: 50 } },
    },
  ])(
    'every uplink acknowledged 2.04 reaches IoT Core by exit ($ack: $why)',
    async ({ ack, publisher }) => {
      server = await IotDataPlaneServer.start();
      server.inject({ kind: 'delay', ms: 60 }, Infinity, 'publish');
      const ids = Array.from({ length: DEVICES }, (_, i) => `iot-${i}`);
      const shutdown = { delayMs: 0, drainTimeoutMs: 8000, deadlineMs: 12_000, retryAfterSeconds: 3 };
      gw = await startChildGateway({
        devices: ids.map((id) => ({ id })),
        config: {
          publisher: { type: 'aws-iot', endpoint: server.url, region: 'us-east-1', ack, ...publisher },
          shutdown,
          log: { level: 'info' },
        },
        env: {
          AWS_ACCESS_KEY_ID: TEST_CREDENTIAL.accessKeyId,
          AWS_SECRET_ACCESS_KEY: TEST_CREDENTIAL.secretAccessKey,
        },
      });
      const sent: Sent[] = [];
      // About 400 uplinks/s: faster than the outbox delivers (8 at a time, 60 ms each), so a backlog builds.
      const load = Promise.all(ids.map((id) => device(gw!.coapPort, id, sent, gw!.exited, 40)));
      await new Promise((r) => setTimeout(r, 700));
      // The signal comes while IoT Core holds a publish of an uplink the gateway has taken (on a loaded machine
      // the gateway can stall long enough for every publish to have been answered at any given moment).
      const waitUntil = Date.now() + 5000;
      while (server.delayed === 0 && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 1));
      expect(server.delayed, 'a publish was on its way to IoT Core').toBeGreaterThan(0);
      const signalAt = Date.now();
      const deliveredAtSignal = server.publishes.length;
      gw.proc.kill('SIGTERM');
      const exit = await gw.exited;
      await load;

      expect(exit.code).toBe(0);
      expect(exit.at - signalAt).toBeLessThan(shutdown.deadlineMs);
      expect(gw.logs.find((l) => l.msg === 'stopped')?.drained).toBe(true);
      const delivered = new Set(
        server.publishes.map((p) => {
          const env = JSON.parse(p.payload.toString()) as { raw: string };
          return Buffer.from(env.raw, 'base64').toString();
        }),
      );
      const acked = sent.filter((s) => s.result.outcome === 'ok');
      // Uplinks were still on their way to IoT Core when the signal came.
      expect(acked.length).toBeGreaterThan(deliveredAtSignal);
      for (const s of acked) expect(delivered.has(s.payload), `${s.payload} reached IoT Core`).toBe(true);
      for (const s of sent.filter((x) => x.result.outcome === 'error')) {
        expect(s.result.code).toBe(Code.SERVICE_UNAVAILABLE);
        expect(delivered.has(s.payload), `refused ${s.payload} did not reach IoT Core`).toBe(false);
      }
    },
    30_000,
  );
});

describe('termination signals', () => {
  afterEach(() => {
    process.removeAllListeners('SIGTERM');
    process.removeAllListeners('SIGINT');
    vi.useRealTimers();
  });

  function gateway(
    shutdown: () => Promise<{ drained: boolean; ms: number }>,
  ): Terminable & { calls: string[] } {
    const calls: string[] = [];
    return {
      log: silentLogger(),
      calls,
      shutdown: (signal) => {
        calls.push(signal);
        return shutdown();
      },
    };
  }

  it('exits 0 once the graceful shutdown completes, and ignores a repeated SIGTERM', async () => {
    const exits: number[] = [];
    const gw = gateway(() => Promise.resolve({ drained: true, ms: 1 }));
    exitOnTermination(gw, { ...SHUTDOWN }, (c) => exits.push(c));
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGTERM', 'SIGTERM');
    await new Promise((r) => setImmediate(r));
    expect(gw.calls).toEqual(['SIGTERM']);
    expect(exits).toEqual([0]);
  });

  it('exits 0 at the deadline when the shutdown hangs, and at once (130) on a second SIGINT', async () => {
    vi.useFakeTimers();
    const exits: number[] = [];
    exitOnTermination(
      gateway(() => new Promise(() => undefined)),
      { ...SHUTDOWN },
      (c) => exits.push(c),
    );
    process.emit('SIGTERM', 'SIGTERM');
    vi.advanceTimersByTime(SHUTDOWN.deadlineMs - 1);
    expect(exits).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(exits).toEqual([0]);
    process.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([0, 130]);
  });

  it('exits 1 when the shutdown fails', async () => {
    const exits: number[] = [];
    exitOnTermination(
      gateway(() => Promise.reject(new Error('disk gone'))),
      { ...SHUTDOWN },
      (c) => exits.push(c),
    );
    process.emit('SIGTERM', 'SIGTERM');
    await new Promise((r) => setImmediate(r));
    expect(exits).toEqual([1]);
  });
});
