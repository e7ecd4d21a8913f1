import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboxConfig } from '../../src/config/publisher.js';
import { Outbox } from '../../src/publish/outbox/outbox.js';
import { crc32, decodeRecord, encodeRecord, StoredMessage } from '../../src/publish/outbox/record.js';
import {
  messageBody,
  PublishError,
  type PublishCallback,
  type PublishMessage,
} from '../../src/publish/publisher.js';
import { RecordingPublisher } from '../support/recording-publisher.js';
import { deps, message, metricValue, publish, sleep } from './helpers.js';

/** A recording sink that stays ready while it fails, so the outbox waits only the Max-Age (0 s) between tries. */
class GateSink extends RecordingPublisher {
  closed = false;

  override ready(): boolean {
    return true;
  }

  set up(up: boolean) {
    this.failWithRetryAfter = up ? undefined : 0;
  }

  override close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  ids(): string[] {
    return this.messages.map((m) => m.id);
  }
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cellgate-outbox-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function outboxConfig(dir: string, over: Partial<OutboxConfig> = {}): OutboxConfig {
  return {
    dir,
    maxBytes: 64 * 1024 * 1024,
    maxRecords: 1_000_000,
    segmentBytes: 64 * 1024 * 1024,
    maxPendingBytes: 16 * 1024 * 1024,
    fsync: true,
    maxInFlight: 64,
    cursorIntervalMs: 20,
    ...over,
  };
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await sleep(5);
  }
}

const segmentFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();

describe('outbox records', () => {
  it('computes CRC-32 (IEEE) known answers', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
    expect(crc32(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('round-trips a message, with its body as a view and its envelope on demand', () => {
    const msg = message('mé-1', 'cellgate/ü/telemetry', 'dév');
    const rec = encodeRecord(msg, 1_700_000_000_123);
    const r = decodeRecord(Buffer.concat([Buffer.from('xx'), rec]), 2);
    expect(r.kind).toBe('record');
    if (r.kind !== 'record') return;
    expect(r.size).toBe(rec.length);
    expect(r.msg).toBeInstanceOf(StoredMessage);
    expect(r.msg).toMatchObject({ id: 'mé-1', topic: 'cellgate/ü/telemetry', deviceId: 'dév', thing: 'dév' });
    expect(r.msg.appendedAt).toBe(1_700_000_000_123);
    expect(r.msg.body.equals(messageBody(msg))).toBe(true);
    expect(r.msg.envelope).toEqual(msg.envelope);
  });

  it('tells a short record from a damaged one', () => {
    const rec = encodeRecord(message('m'), 1);
    expect(decodeRecord(rec.subarray(0, 5), 0)).toEqual({ kind: 'short', need: 8 });
    expect(decodeRecord(rec.subarray(0, rec.length - 1), 0)).toEqual({ kind: 'short', need: rec.length });
    const flipped = Buffer.from(rec);
    flipped[rec.length - 3] ^= 0x40;
    expect(decodeRecord(flipped, 0)).toMatchObject({ kind: 'corrupt', reason: 'checksum mismatch' });
    const badLen = Buffer.from(rec);
    badLen.writeUInt32BE(3, 0);
    expect(decodeRecord(badLen, 0)).toMatchObject({ kind: 'corrupt' });
  });

  it('calls a record corrupt whose fields leave no room for the next length, checksum or not (found by fuzzing)', () => {
    // 17 bytes of payload: version, time, then an id of 6 bytes where four 2-byte lengths should follow. The
    // length of the second field would be read past the end of the buffer.
    const rec = Buffer.alloc(8 + 17);
    rec.writeUInt32BE(17, 0);
    rec[8] = 1; // version; the time stays 0
    rec.writeUInt16BE(6, 17); // the id takes the six bytes left
    rec.writeUInt32BE(crc32(rec, 8), 4);
    expect(decodeRecord(rec, 0)).toEqual({ kind: 'corrupt', reason: 'field overruns the record' });
    // The same when the next record's bytes follow: they are not read as this record's field lengths.
    const two = Buffer.concat([rec, encodeRecord(message('m'), 1)]);
    expect(decodeRecord(two, 0)).toEqual({ kind: 'corrupt', reason: 'field overruns the record' });
  });
});

describe('Outbox', () => {
  it('acknowledges once stored, while the sink is down, and delivers everything in order when it recovers', async () => {
    const dir = tempDir();
    const sink = new GateSink();
    sink.up = false;
    const d = deps();
    const outbox = await Outbox.open(sink, outboxConfig(dir), d);
    const ids = Array.from({ length: 200 }, (_, i) => `m${i}`);
    const t0 = performance.now();
    const errs = await Promise.all(ids.map((id) => publish(outbox, message(id))));
    expect(errs.every((e) => e === null)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(outbox.pending()).toBe(200);
    expect(sink.messages).toHaveLength(0);
    expect(await metricValue(d.metrics, 'cellgate_outbox_messages')).toBe(200);

    sink.up = true;
    await until(() => outbox.pending() === 0);
    expect(sink.ids()).toEqual(ids);
    expect(await metricValue(d.metrics, 'cellgate_outbox_delivered_total')).toBe(200);
    await outbox.close();
    expect(sink.closed).toBe(true);
  });

  it('keeps log order with a sink that answers later', async () => {
    const sink = new GateSink();
    sink.delayMs = 1;
    const outbox = await Outbox.open(sink, outboxConfig(tempDir(), { maxInFlight: 8 }), deps());
    const ids = Array.from({ length: 300 }, (_, i) => `o${i}`);
    for (const id of ids) outbox.publish(message(id), () => {});
    await until(() => sink.messages.length === ids.length);
    expect(sink.ids()).toEqual(ids);
    await outbox.close();
  });

  it('survives a restart: what was stored and not delivered is delivered by the next run', async () => {
    const dir = tempDir();
    const down = new GateSink();
    down.up = false;
    const first = await Outbox.open(down, outboxConfig(dir), deps());
    for (let i = 0; i < 50; i++) expect(await publish(first, message(`r${i}`))).toBeNull();
    await first.close();

    const sink = new GateSink();
    const second = await Outbox.open(sink, outboxConfig(dir), deps());
    expect(second.pending()).toBe(50);
    await until(() => second.pending() === 0);
    expect(sink.ids()).toEqual(Array.from({ length: 50 }, (_, i) => `r${i}`));
    // and new messages still go in after the recovered ones
    expect(await publish(second, message('after'))).toBeNull();
    await until(() => sink.messages.length === 51);
    await second.close();

    const third = await Outbox.open(new GateSink(), outboxConfig(dir), deps());
    expect(third.pending()).toBe(0); // the cursor was saved: nothing is delivered twice
    await third.close();
  });

  it('cuts off a torn write at the end of the log and keeps what came before', async () => {
    const dir = tempDir();
    const down = new GateSink();
    down.up = false;
    const first = await Outbox.open(down, outboxConfig(dir), deps());
    for (let i = 0; i < 10; i++) await publish(first, message(`t${i}`));
    await first.close();
    const seg = join(dir, segmentFiles(dir).at(-1)!);
    const good = statSync(seg).size;
    const torn = encodeRecord(message('torn'), 1).subarray(0, 40);
    appendFileSync(seg, torn);

    const d = deps();
    const sink = new GateSink();
    const second = await Outbox.open(sink, outboxConfig(dir), d);
    expect(statSync(seg).size).toBe(good);
    expect(second.pending()).toBe(10);
    expect(await publish(second, message('t10'))).toBeNull();
    await until(() => sink.messages.length === 11);
    expect(sink.ids()).toEqual(Array.from({ length: 11 }, (_, i) => `t${i}`));
    await second.close();
  });

  it('rolls segments, reads records larger than a read chunk, and deletes delivered segments', async () => {
    const dir = tempDir();
    const sink = new GateSink();
    sink.up = false;
    const outbox = await Outbox.open(sink, outboxConfig(dir, { segmentBytes: 64 * 1024 }), deps());
    const big = message('big');
    big.body = Buffer.from(JSON.stringify({ blob: 'x'.repeat(300 * 1024) }));
    expect(await publish(outbox, big)).toBeNull();
    for (let i = 0; i < 100; i++) expect(await publish(outbox, message(`s${i}`))).toBeNull();
    expect(segmentFiles(dir).length).toBeGreaterThan(1);
    sink.up = true;
    await until(() => outbox.pending() === 0);
    expect(sink.ids()).toEqual(['big', ...Array.from({ length: 100 }, (_, i) => `s${i}`)]);
    expect(sink.messages[0].body?.equals(big.body)).toBe(true);
    await until(() => segmentFiles(dir).length === 1);
    await outbox.close();
  });

  it('refuses with 5.03 when full, and reports the cap', async () => {
    const sink = new GateSink();
    sink.up = false;
    const d = deps();
    const outbox = await Outbox.open(
      sink,
      outboxConfig(tempDir(), { maxBytes: 256 * 1024, segmentBytes: 64 * 1024, maxRecords: 1000 }),
      d,
    );
    let refused: PublishError | null = null;
    for (let i = 0; i < 2000 && !refused; i++) refused = await publish(outbox, message(`f${i}`));
    expect(refused?.message).toMatch(/outbox is full/);
    expect(refused?.retryAfterSeconds).toBe(30);
    expect(outbox.ready()).toBe(false);
    expect(await metricValue(d.metrics, 'cellgate_cap_hits_total', { cap: 'outbox_size' })).toBe(1);
    sink.up = true;
    await until(() => outbox.ready());
    await outbox.close();
  });

  it('caps messages by count too', async () => {
    const sink = new GateSink();
    sink.up = false;
    const outbox = await Outbox.open(sink, outboxConfig(tempDir(), { maxRecords: 3 }), deps());
    const errs = [];
    for (let i = 0; i < 4; i++) errs.push(await publish(outbox, message(`c${i}`)));
    expect(errs.slice(0, 3)).toEqual([null, null, null]);
    expect(errs[3]?.message).toMatch(/full/);
    await outbox.close();
  });

  it('skips a damaged record inside an older segment and delivers the rest', async () => {
    const dir = tempDir();
    const down = new GateSink();
    down.up = false;
    const first = await Outbox.open(down, outboxConfig(dir, { segmentBytes: 64 * 1024 }), deps());
    const ids: string[] = [];
    while (segmentFiles(dir).length < 3) {
      const id = `k${ids.length}`;
      ids.push(id);
      await publish(first, message(id));
    }
    await first.close();
    const seg0 = join(dir, segmentFiles(dir)[0]);
    const bytes = readFileSync(seg0);
    bytes[20] ^= 0xff; // inside the first record's payload
    writeFileSync(seg0, bytes);

    const sink = new GateSink();
    const second = await Outbox.open(sink, outboxConfig(dir), deps());
    await until(() => second.pending() === 0);
    const got = sink.ids();
    expect(got.length).toBeGreaterThan(0);
    expect(got).not.toContain('k0');
    expect(got).toEqual(ids.filter((id) => got.includes(id))); // in order
    expect(got.at(-1)).toBe(ids.at(-1)); // later segments delivered in full
    await second.close();
  });

  it('falls back to the oldest segment when the cursor file is damaged (delivers again, loses nothing)', async () => {
    const dir = tempDir();
    const sink = new GateSink();
    const first = await Outbox.open(sink, outboxConfig(dir), deps());
    for (let i = 0; i < 5; i++) await publish(first, message(`d${i}`));
    await until(() => first.pending() === 0);
    await first.close();
    writeFileSync(join(dir, 'cursor'), 'garbage-garbage!');
    const again = new GateSink();
    const second = await Outbox.open(again, outboxConfig(dir), deps());
    await until(() => again.messages.length === 5);
    expect(again.ids()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
    await second.close();
  });

  it('drops a message the sink refuses for good instead of blocking the log behind it', async () => {
    class Picky extends GateSink {
      override publish(msg: PublishMessage, done: PublishCallback): void {
        if (msg.id === 'poison') return done(new PublishError('HTTP 413', 30, { permanent: true }));
        super.publish(msg, done);
      }
    }
    const sink = new Picky();
    const d = deps();
    const outbox = await Outbox.open(sink, outboxConfig(tempDir()), d);
    for (const id of ['a', 'poison', 'b']) expect(await publish(outbox, message(id))).toBeNull();
    await until(() => outbox.pending() === 0);
    expect(sink.ids()).toEqual(['a', 'b']);
    expect(await metricValue(d.metrics, 'cellgate_outbox_dropped_total')).toBe(1);
    await outbox.close();
  });

  it('refuses after close', async () => {
    const outbox = await Outbox.open(new GateSink(), outboxConfig(tempDir()), deps());
    await outbox.close();
    expect((await publish(outbox, message('late')))?.message).toMatch(/closed/);
  });
});

describe('outbox folder lock', () => {
  it('refuses a folder already open in this process or owned by another host, and takes over a dead owner', async () => {
    const dir = tempDir();
    const first = await Outbox.open(new GateSink(), outboxConfig(dir), deps());
    await expect(Outbox.open(new GateSink(), outboxConfig(dir), deps())).rejects.toThrow(/already open/);
    await first.close();

    writeFileSync(join(dir, 'lock'), 'some-other-pod 1\n');
    await expect(Outbox.open(new GateSink(), outboxConfig(dir), deps())).rejects.toThrow(
      /belongs to host some-other-pod/,
    );
    await expect(Outbox.open(new GateSink(), outboxConfig(dir), deps())).rejects.toMatchObject({
      code: 'CELLGATE_OUTBOX_IN_USE',
    });

    writeFileSync(join(dir, 'lock'), `${hostname()} 999999999\n`); // no such process
    const again = await Outbox.open(new GateSink(), outboxConfig(dir), deps());
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(`${hostname()} ${process.pid}\n`);
    await again.close();
  });
});
