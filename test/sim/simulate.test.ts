/** The device simulator against a running gateway: in-process, through a lossy link, and as the CLI. */
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatencyRecorder } from '../../src/sim/latency.js';
import { parseSimOptions } from '../../src/sim/options.js';
import { runSimulation } from '../../src/sim/simulate.js';
import { formatSummary } from '../../src/sim/stats.js';
import { createSocket } from 'node:dgram';
import { CLI, assertBuilt } from '../support/child-gateway.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropFirstTransmissions, LossyRelay } from '../support/lossy-relay.js';
import { prng } from '../support/prng.js';

const run = promisify(execFile);
const PSK = 'text:simulated-fleet-key';
const DEVICES = [
  ...Array.from({ length: 20 }, (_, i) => ({ id: `sim-${i + 1}` })),
  ...Array.from({ length: 4 }, (_, i) => ({
    id: `dtls-${i + 1}`,
    psk: { identity: `dtls-${i + 1}`, key: PSK },
  })),
];

/** A UDP port nobody listens on (bound for a moment, then closed). */
async function closedUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}

describe('cellgate simulate', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ devices: DEVICES });
  });
  afterAll(async () => {
    await gw.stop();
  });

  const opts = (args: string) =>
    parseSimOptions(['--port', String(gw.coapPort), ...args.split(' ').filter(Boolean)]);

  it('sends N × C uplinks as devices <prefix><i>, paced by --rate, and reports them acknowledged', async () => {
    const before = gw.recorder.messages.length;
    const progress = new PassThrough();
    let lines = '';
    progress.on('data', (d: Buffer) => (lines += d.toString()));
    const t0 = performance.now();
    const s = await runSimulation(opts('--devices 4 --count 3 --rate 60 --progress-ms 50'), { progress });
    const elapsed = performance.now() - t0;
    expect(s).toMatchObject({
      devices: 4,
      uplinks: 12,
      sent: 12,
      acknowledged: 12,
      failed: {},
      downlinks: 0,
    });
    // 12 uplinks at 60/s: the last is due at 11/60 s.
    expect(elapsed).toBeGreaterThanOrEqual(170);
    const got = gw.recorder.messages.slice(before);
    expect(got.map((m) => m.deviceId).sort()).toEqual(
      ['sim-1', 'sim-2', 'sim-3', 'sim-4'].flatMap((id) => [id, id, id]).sort(),
    );
    const body = JSON.parse(Buffer.from(got[0].envelope.raw, 'base64').toString()) as Record<string, unknown>;
    expect(body).toMatchObject({ id: got[0].deviceId });
    expect(got.every((m) => m.envelope.coap?.type === 'CON' && m.envelope.path === 'telemetry')).toBe(true);
    const l = s.latencyMs!;
    expect(0 < l.min && l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max).toBe(true);
    expect(lines).toMatch(/sent \d+\/12 {2}acked \d+/);
  });

  it('comes back from a new source port after sleeping when asked to (NAT rebinding)', async () => {
    const before = gw.recorder.messages.length;
    const s = await runSimulation(
      opts('--devices 2 --count 4 --rate 100 --rebind 1 --first 3 --progress-ms 0'),
    );
    expect(s).toMatchObject({ acknowledged: 8, rebinds: 6 });
    for (const id of ['sim-3', 'sim-4']) {
      const ports = gw.recorder.messages
        .slice(before)
        .filter((m) => m.deviceId === id)
        .map((m) => m.envelope.remote.port);
      expect(new Set(ports).size, `${id} used a new port each time`).toBe(4);
    }
  });

  it('sends large payloads block-wise (Block1) and NON uplinks', async () => {
    const before = gw.recorder.messages.length;
    const s = await runSimulation(
      opts('--devices 2 --count 2 --payload random:3000 --block-size 256 --non-ratio 1 --progress-ms 0'),
    );
    expect(s).toMatchObject({ acknowledged: 4, messages: 4 * 12 });
    for (const m of gw.recorder.messages.slice(before)) {
      expect(Buffer.from(m.envelope.raw, 'base64')).toHaveLength(3000);
      expect(m.envelope.coap).toMatchObject({ type: 'NON', blocks: 12 });
    }
  });

  it('counts downlinks piggybacked on the answer, fetching a large one block-wise (Block2)', async () => {
    const downlink = Buffer.alloc(2500, 0x5a);
    // The gateway's uplink responder is the downlink layer: this test answers in its place for a while.
    const downlinks = gw.downlinks!;
    const respond = downlinks.respondToUplink;
    downlinks.respondToUplink = (ex, device, res) =>
      ex.respond(device.id === 'sim-5' ? { ...res, payload: downlink } : res);
    try {
      const s = await runSimulation(opts('--devices 5 --count 2 --block-size 1024 --progress-ms 0'));
      expect(s).toMatchObject({ acknowledged: 10, downlinks: 2 });
      // 2 of the uplinks needed 2 follow-up requests for Block2 blocks 1 and 2 of the downlink.
      expect(s.messages).toBe(10 + 2 * 2);
    } finally {
      downlinks.respondToUplink = respond;
    }
  });

  it('receives a queued command as a downlink and confirms it by echoing its ETag', async () => {
    const admin = `http://127.0.0.1:${gw.ports.http}/things/sim-7/commands`;
    const queued = await fetch(admin, { method: 'POST', body: JSON.stringify({ data: { op: 'reboot' } }) });
    expect(queued.status).toBe(201);
    const s = await runSimulation(opts('--devices 1 --first 7 --count 3 --accept 50 --progress-ms 0'));
    expect(s).toMatchObject({ acknowledged: 3, downlinks: 1 });
    const listed = (await (await fetch(admin)).json()) as { commands: { state: string }[] };
    expect(listed.commands.map((c) => c.state)).toEqual(['delivered']);
  });

  describe('over DTLS', () => {
    const dtls = (args: string) =>
      parseSimOptions(
        [
          '--port',
          String(gw.ports.dtls),
          '--dtls',
          '--psk-key',
          PSK,
          '--id-prefix',
          'dtls-',
          ...args.split(' '),
        ].filter(Boolean),
      );

    it('handshakes once per device with its id as PSK identity and sends its uplinks in the session', async () => {
      const before = gw.recorder.messages.length;
      const s = await runSimulation(dtls('--devices 3 --count 3 --progress-ms 0'));
      expect(s).toMatchObject({ sent: 9, acknowledged: 9, handshakes: 3, failed: {} });
      const got = gw.recorder.messages.slice(before);
      expect(got.every((m) => m.envelope.transport === 'coaps')).toBe(true);
      expect(new Set(got.map((m) => m.envelope.pskIdentity))).toEqual(
        new Set(['dtls-1', 'dtls-2', 'dtls-3']),
      );
    });

    it('keeps its session across a new source port thanks to the Connection ID', async () => {
      const before = gw.recorder.messages.length;
      const s = await runSimulation(dtls('--devices 2 --count 4 --rate 100 --rebind 1 --progress-ms 0'));
      expect(s).toMatchObject({ acknowledged: 8, rebinds: 6, handshakes: 2 });
      const ports = gw.recorder.messages
        .slice(before)
        .filter((m) => m.deviceId === 'dtls-1')
        .map((m) => m.envelope.remote.port);
      expect(new Set(ports).size).toBe(4);
      const metrics = await (await fetch(`http://127.0.0.1:${gw.ports.http}/metrics`)).text();
      expect(metrics).toMatch(/cellgate_dtls_cid_address_updates_total [1-9]/);
    });

    it('uploads block-wise inside the session', async () => {
      const s = await runSimulation(
        dtls('--devices 1 --count 2 --payload random:3000 --block-size 512 --progress-ms 0'),
      );
      expect(s).toMatchObject({ acknowledged: 2, messages: 12 });
    });

    it('counts a handshake the gateway refuses (wrong key) as a failure, and says so in the summary', async () => {
      const s = await runSimulation(
        parseSimOptions(
          [
            '--port',
            String(gw.ports.dtls),
            '--dtls',
            '--psk-key',
            'text:wrong',
            '--id-prefix',
            'dtls-',
          ].concat('--devices 2 --count 3 --ack-timeout-ms 100 --progress-ms 0'.split(' ')),
        ),
      );
      expect(s).toMatchObject({
        sent: 0,
        acknowledged: 0,
        failed: { 'handshake-refused': 6 },
        latencyMs: null,
      });
      const text = formatSummary(s);
      expect(text).toMatch(/^uplinks sent +0 of 6 {2}\(6 not sent\)$/m);
      expect(text).toMatch(/^failed +6 {2}\(handshake-refused × 6\)$/m);
      expect(text).toMatch(/^latency ms +n\/a \(nothing acknowledged\)$/m);
    });

    it('gives up a handshake nobody answers after --handshake-timeout-ms, and tells a closed port apart', async () => {
      // The NoSec port: something listens, but it does not speak DTLS (silence, as behind a firewall).
      const t0 = performance.now();
      const silent = await runSimulation(
        parseSimOptions(
          ['--port', String(gw.coapPort), '--dtls', '--psk-key', PSK, '--id-prefix', 'dtls-'].concat(
            '--devices 2 --count 2 --handshake-timeout-ms 300 --ack-timeout-ms 100 --progress-ms 0'.split(
              ' ',
            ),
          ),
        ),
      );
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(silent).toMatchObject({ sent: 0, failed: { 'handshake-timeout': 4 } });
      // A port nobody listens on: ICMP port unreachable ends the handshake at once.
      const closed = await closedUdpPort();
      const t1 = performance.now();
      const refused = await runSimulation(
        parseSimOptions(
          ['--port', String(closed), '--dtls', '--psk-key', PSK].concat(
            '--devices 2 --count 1 --handshake-timeout-ms 20000 --progress-ms 0'.split(' '),
          ),
        ),
      );
      expect(performance.now() - t1).toBeLessThan(5000);
      expect(refused).toMatchObject({ sent: 0, failed: { unreachable: 2 } });
    });
  });

  it('as the CLI, a refused handshake reads as failed uplinks that were never sent (exit 1)', async () => {
    assertBuilt();
    const r = await run(process.execPath, [
      CLI,
      'simulate',
      '--dtls',
      '--psk-key',
      'text:wrong',
      '--port',
      String(gw.ports.dtls),
      '--id-prefix',
      'dtls-',
      '--count',
      '2',
      '--progress-ms',
      '0',
    ]).catch((e: { code: number; stdout: string }) => e);
    expect(r).toMatchObject({ code: 1 });
    expect(r.stdout).toMatch(/^uplinks sent +0 of 2 {2}\(2 not sent\)$/m);
    expect(r.stdout).toMatch(/^failed +2 {2}\(handshake-refused × 2\)$/m);
    expect(r.stdout).toMatch(/^latency ms +n\/a/m);
  });

  it('counts no separate responses for NON uplinks (their answers are NON messages of their own)', async () => {
    const s = await runSimulation(opts('--devices 2 --count 3 --non-ratio 1 --progress-ms 0'));
    expect(s).toMatchObject({ sent: 6, acknowledged: 6, separateResponses: 0 });
  });

  it('reports refusals by response code', async () => {
    const s = await runSimulation(opts('--devices 2 --count 2 --id-prefix nobody- --progress-ms 0'));
    expect(s).toMatchObject({ sent: 4, acknowledged: 0, failed: { '4.01': 4 } });
    gw.recorder.failWithRetryAfter = 9;
    try {
      const r = await runSimulation(opts('--devices 1 --count 2 --progress-ms 0'));
      expect(r.failed).toEqual({ '5.03': 2 });
    } finally {
      gw.recorder.failWithRetryAfter = undefined;
    }
  });

  it('retransmits over a lossy link and still gets every uplink acknowledged once', async () => {
    const relay = await LossyRelay.start({
      targetPort: gw.coapPort,
      drop: dropFirstTransmissions(prng(42), 0.3),
    });
    const before = gw.recorder.messages.length;
    try {
      const s = await runSimulation(
        parseSimOptions(
          `--port ${relay.port} --devices 4 --count 5 --ack-timeout-ms 100 --progress-ms 0`.split(' '),
        ),
      );
      expect(s.acknowledged).toBe(20);
      expect(s.retransmissions).toBeGreaterThan(0);
      expect(gw.recorder.messages.length - before).toBe(20);
    } finally {
      await relay.close();
    }
  });

  it('stops early when aborted (Ctrl-C), with the summary so far and no listener build-up', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 300);
      const t0 = performance.now();
      const s = await runSimulation(opts('--devices 20 --count 100 --rate 100 --progress-ms 0'), {
        signal: abort.signal,
      });
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(s.sent).toBeGreaterThan(10);
      expect(s.sent).toBeLessThan(100);
      expect(s.acknowledged).toBe(s.sent);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  it('runs as `cellgate simulate` and prints a JSON summary; exits 1 when uplinks fail, 2 on bad options', async () => {
    assertBuilt();
    const ok = await run(process.execPath, [
      CLI,
      'simulate',
      '--port',
      String(gw.coapPort),
      '--devices',
      '3',
      '--count',
      '2',
      '--json',
    ]);
    const summary = JSON.parse(ok.stdout) as { acknowledged: number; latencyMs: { p99: number } };
    expect(summary.acknowledged).toBe(6);
    expect(ok.stderr).toMatch(/acked 6/);

    const secure = await run(process.execPath, [
      CLI,
      'simulate',
      '--dtls',
      '--psk-key',
      PSK,
      '--port',
      String(gw.ports.dtls),
      '--id-prefix',
      'dtls-',
      '--devices',
      '2',
      '--count',
      '2',
      '--json',
    ]);
    expect(JSON.parse(secure.stdout)).toMatchObject({ acknowledged: 4, handshakes: 2 });

    const text = await run(process.execPath, [
      CLI,
      'simulate',
      '--port',
      String(gw.coapPort),
      '--count',
      '2',
    ]);
    expect(text.stdout).toMatch(/acknowledged\s+2\n/);
    expect(text.stdout).toMatch(/latency ms\s+p50 [\d.]+ {2}p90/);

    await expect(
      run(process.execPath, [CLI, 'simulate', '--port', String(gw.coapPort), '--id-prefix', 'ghost-']),
    ).rejects.toMatchObject({ code: 1 });
    await expect(run(process.execPath, [CLI, 'simulate', '--dtls'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--dtls needs --psk-key'),
    });
    await expect(run(process.execPath, [CLI, 'simulate', '--devices', '0'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--devices must be an integer from 1'),
    });
  });
});

describe('simulator options', () => {
  it('rejects what it cannot use, naming the option', () => {
    const bad: [string, RegExp][] = [
      ['--rate -1', /--rate/],
      ['--non-ratio 2', /--non-ratio/],
      ['--block-size 100', /power of two/],
      ['--payload hex:abc', /even number/],
      ['--payload random:x', /random/],
      ['--psk-key text:k', /with --dtls/],
      ['--dtls --psk-key nokind', /--psk-key: a key is written/],
      ['--bogus', /Unknown option/],
    ];
    for (const [args, msg] of bad) expect(() => parseSimOptions(args.split(' ')), args).toThrow(msg);
  });

  it('fills payload templates per device and uplink', () => {
    const o = parseSimOptions(['--payload', 'text:{id}|{i}|{seq}']);
    expect(o.payload({ id: 'd-7', i: 7, seq: 3 }).toString()).toBe('d-7|7|3');
    expect(parseSimOptions(['--payload', 'hex:00ff']).payload({ id: '', i: 0, seq: 0 })).toEqual(
      Buffer.from([0, 255]),
    );
    expect(parseSimOptions(['--payload', 'random:17']).payload({ id: '', i: 0, seq: 0 })).toHaveLength(17);
    expect(parseSimOptions(['--dtls', '--psk-key', 'hex:0102']).pskKey).toEqual(Buffer.from([1, 2]));
    expect(parseSimOptions(['--dtls', '--psk-key', 'hex:0102']).port).toBe(5684);
  });
});

describe('latency percentiles', () => {
  it('are within 1 % of the exact sample quantiles, in bounded memory', () => {
    const rand = prng(7);
    const samples = Array.from({ length: 20_000 }, () => 0.05 + rand() ** 3 * 5000);
    const rec = new LatencyRecorder();
    for (const s of samples) rec.record(s);
    samples.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = samples[Math.ceil(q * samples.length) - 1];
      expect(Math.abs(rec.quantile(q) - exact) / exact, `q=${q}`).toBeLessThan(0.011);
    }
    expect(rec.quantile(1)).toBe(samples.at(-1));
    expect(rec.min).toBe(samples[0]);
    expect(new LatencyRecorder().quantile(0.5)).toBe(0);
  });
});
