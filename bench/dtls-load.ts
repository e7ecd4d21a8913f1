/**
 * A DTLS 1.2 load generator built on cellgate's own DTLS client: SESSIONS sessions (PSK identity
 * `<ID_PREFIX><i>`), PARALLEL handshakes at a time (cookie exchange included), then SECONDS of CoAP CON POSTs
 * with a PAYLOAD_BYTES payload to PATH, one in flight per session. Prints the handshake rate, then the
 * exchange rate and latency percentiles, one line each.
 *
 *   node dist/bench/dtls-load.js HOST PORT SESSIONS PARALLEL SECONDS PAYLOAD_BYTES PATH ID_PREFIX KEY_HEX
 *     [SUITE [cid] [CERT_FILE KEY_FILE]]
 *
 * SUITE is CCM_8 (default), GCM or CCM (PSK), ECDHE_PSK (TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256), or
 * ECDHE_ECDSA / ECDHE_ECDSA_GCM with the client certificate chain and P-256 key in CERT_FILE and KEY_FILE
 * (PEM). `cid` offers Connection IDs (RFC 9146; an empty one of the client's, as most devices do), so the
 * server's records and sessions are those of devices behind NATs. Any other program taking these arguments
 * and printing these lines can stand in for it (the `dtls` bench scenario takes one from DTLS_LOAD_COMMAND).
 */
import { createPrivateKey } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { pemCertificates } from '../src/dtls/certificates/peer-verifier.js';
import { DtlsClientCore, type ClientCertificate } from '../src/dtls/client.js';
import { LatencyHistogram } from './histogram.js';

const SUITES: Record<string, number> = {
  CCM_8: 0xc0a8,
  GCM: 0x00a8,
  CCM: 0xc0a4,
  ECDHE_PSK: 0xd003,
  ECDHE_ECDSA: 0xc0ae,
  ECDHE_ECDSA_GCM: 0xc02b,
};
const HANDSHAKE_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 2000;

const [
  host,
  portArg,
  sessionsArg,
  parallelArg,
  secondsArg,
  payloadArg,
  path,
  idPrefix,
  keyHex,
  suiteArg,
  ...extra
] = process.argv.slice(2);
const cidArg = extra[0] === 'cid' ? extra.shift() : undefined;
const [certFile, keyFile] = extra;
if (!keyHex || extra.length % 2 !== 0) {
  process.stderr.write(
    'usage: dtls-load HOST PORT SESSIONS PARALLEL SECONDS PAYLOAD_BYTES PATH ID_PREFIX KEY_HEX ' +
      '[CCM_8|GCM|CCM|ECDHE_PSK|ECDHE_ECDSA|ECDHE_ECDSA_GCM [cid] [CERT_FILE KEY_FILE]]\n',
  );
  process.exit(2);
}
const port = Number(portArg);
const sessions = Number(sessionsArg);
const parallel = Number(parallelArg);
const seconds = Number(secondsArg);
const key = Buffer.from(keyHex, 'hex');
const suite = SUITES[suiteArg ?? 'CCM_8'];
if (suite === undefined) {
  process.stderr.write(`unknown suite ${suiteArg}\n`);
  process.exit(2);
}
const certificate: ClientCertificate | undefined =
  certFile && keyFile
    ? {
        chain: pemCertificates(readFileSync(certFile, 'utf8')),
        key: createPrivateKey(readFileSync(keyFile)),
      }
    : undefined;
if (suiteArg?.startsWith('ECDHE_ECDSA') && !certificate) {
  process.stderr.write('ECDHE_ECDSA needs CERT_FILE and KEY_FILE\n');
  process.exit(2);
}

/** A CoAP CON POST to PATH with a payload, Message ID and token patched per request. */
function requestTemplate(): Buffer {
  const p = Buffer.from(path);
  if (p.length >= 13) throw new Error('path too long for this generator');
  return Buffer.concat([
    Buffer.from([0x44, 0x02, 0, 0, 0, 0, 0, 0, 0xb0 | p.length]),
    p,
    Buffer.from([0xff]),
    Buffer.alloc(Number(payloadArg), 0x61),
  ]);
}

class Session {
  readonly socket: Socket;
  readonly core: DtlsClientCore;
  readonly request = requestTemplate();
  mid = Math.floor(Math.random() * 65536);
  sentAt = 0;

  constructor(readonly index: number) {
    this.socket = createSocket('udp4');
    this.core = new DtlsClientCore(
      {
        identity: `${idPrefix}${index}`,
        key,
        cipherSuites: [suite],
        cid: cidArg === 'cid' ? Buffer.alloc(0) : undefined,
        certificate,
        retransmitMs: 1000,
      },
      (d) => this.socket.send(d),
    );
    this.socket.on('message', (m: Buffer) => this.core.receive(m));
  }

  /** Binds the socket to an ephemeral port and connects it to the server. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.connect(port, host, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  send(): void {
    this.mid = (this.mid + 1) & 0xffff;
    this.request[2] = this.mid >> 8;
    this.request[3] = this.mid & 0xff;
    this.request.writeUInt32BE(this.index, 4);
    this.sentAt = performance.now();
    this.core.write(this.request);
  }
}

async function handshakes(all: Session[]): Promise<{ ok: number; failed: number; seconds: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  // Sockets are set up before the clock starts, as the reference C generator does.
  for (let i = 0; i < all.length; i += 1000)
    await Promise.all(all.slice(i, i + 1000).map((s) => s.connect()));
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < all.length) {
      const s = all[next++];
      const timer = setTimeout(() => s.core.abort('handshake timeout'), HANDSHAKE_TIMEOUT_MS);
      try {
        await s.core.handshake();
        ok++;
      } catch {
        failed++;
        s.core.stop('failed');
      } finally {
        clearTimeout(timer);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  return { ok, failed, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Sessions start their first request in waves of this many, this far apart: all at once, 10,000 requests
 * overflow the server's socket buffer and most sessions would sit out the first REQUEST_TIMEOUT_MS waiting to
 * retransmit, so the run would measure far fewer busy sessions than asked for.
 */
const WAVE = 500;
const WAVE_MS = 10;

async function exchanges(live: Session[]): Promise<void> {
  let hist = new LatencyHistogram();
  let done = 0;
  let non2xx = 0;
  let lost = 0;
  let stopping = false;
  for (const s of live) {
    s.core.onData = (m: Buffer) => {
      if (m.length < 4 || ((m[2] << 8) | m[3]) !== s.mid || s.sentAt === 0) return;
      hist.record(performance.now() - s.sentAt);
      s.sentAt = 0;
      done++;
      if (m[1] >> 5 !== 2) non2xx++;
      if (!stopping) s.send();
    };
  }
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const s of live) {
      if (s.sentAt !== 0 && now - s.sentAt > REQUEST_TIMEOUT_MS) {
        lost++;
        s.sentAt = 0;
        if (!stopping) s.send();
      }
    }
  }, 100);
  for (let i = 0; i < live.length; i += WAVE) {
    for (const s of live.slice(i, i + WAVE)) s.send();
    if (i + WAVE < live.length) await new Promise((r) => setTimeout(r, WAVE_MS));
  }
  // The measurement starts once every session has a request in flight.
  hist = new LatencyHistogram();
  done = 0;
  non2xx = 0;
  lost = 0;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stopping = true;
  const elapsed = (performance.now() - t0) / 1000;
  clearInterval(sweeper);
  process.stdout.write(
    `sessions=${live.length} seconds=${elapsed.toFixed(1)} done=${done} rate=${Math.round(done / elapsed)}/s ` +
      `p50_ms=${hist.quantile(0.5).toFixed(3)} p99_ms=${hist.quantile(0.99).toFixed(3)} lost=${lost} retrans=0 non2xx=${non2xx}\n`,
  );
}

async function main(): Promise<void> {
  const all = Array.from({ length: sessions }, (_, i) => new Session(i));
  const hs = await handshakes(all);
  process.stdout.write(
    `handshakes ok=${hs.ok} failed=${hs.failed} seconds=${hs.seconds.toFixed(2)} rate=${Math.round(hs.ok / hs.seconds)}/s\n`,
  );
  const live = all.filter((s) => s.core.phase === 'connected');
  if (seconds > 0 && live.length > 0) await exchanges(live);
  for (const s of all) {
    s.core.stop('closed');
    s.socket.close();
  }
  process.exit(hs.failed > 0 ? 1 : 0);
}

void main();
