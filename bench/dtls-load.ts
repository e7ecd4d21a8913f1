/**
 * CoAP over DTLS under load, cellgate against libcoap's coap-server-openssl, measured the same way by the
 * reference load generator dtlsload (C, OpenSSL): PSK handshakes per second including the cookie exchange,
 * then confirmable CoAP POSTs (20-byte payload, one in flight per session) with 200 and 10,000 sessions,
 * and the resident memory each server grew by per session. The server runs pinned to core 0 and dtlsload
 * to core 1 when `taskset` is there. Each server is warmed up with 2,000 handshakes before it is measured.
 *
 *   npm run build && node dist/bench/dtls-load.js [seconds=10]
 *
 * dtlsload is compiled from DTLSLOAD_SRC (default ../shared/tools/dtlsload.c next to the repository, as
 * the issue names it) into .bench/, or taken from DTLSLOAD (a built binary). Without it the bench says so.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';

const seconds = Number(process.argv[2] ?? 10);
const KEY_HEX = '73656372657450534b'; // "secretPSK"
/** Handshakes alone, then CoAP exchanges over few and over many sessions. */
const SCENARIOS = [
  { what: 'handshakes', sessions: 10_000, parallel: 100, seconds: 0 },
  { what: 'exchanges', sessions: 200, parallel: 50, seconds },
  { what: 'exchanges', sessions: 10_000, parallel: 100, seconds },
] as const;

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

const pinned = has('taskset') && Number(execFileSync('nproc').toString()) >= 2;
function pin(core: number, command: string, args: string[]): [string, string[]] {
  return pinned ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
}

function dtlsload(): string | undefined {
  if (process.env.DTLSLOAD) return process.env.DTLSLOAD;
  const src = resolve(process.env.DTLSLOAD_SRC ?? '../shared/tools/dtlsload.c');
  if (!existsSync(src)) return undefined;
  const bin = resolve('.bench/dtlsload');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync('.bench', { recursive: true });
    execFileSync('cc', ['-O2', '-o', bin, src, '-lssl', '-lcrypto'], { stdio: 'inherit' });
  }
  return bin;
}

/** A UDP port free now, below 65535 (libcoap serves DTLS on the port above). */
async function freePort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    s.close();
    if (port < 65535) return port;
  }
}

interface ProcessUsage {
  rss: number;
  cpuSeconds: number;
}

/** Resident memory and CPU time (user + system) of a process, from /proc. */
function usageOf(pid: number): ProcessUsage {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rss: rss ? Number(rss[1]) * 1024 : 0, cpuSeconds: ticks / CLOCK_TICKS };
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;

interface LoadResult {
  handshakesPerSecond: number;
  handshakesFailed: number;
  exchangesPerSecond: number;
  p99ms: number;
}

function runLoad(bin: string, port: number, sessions: number, parallel: number, secs: number): LoadResult {
  const [cmd, args] = pin(1, bin, [
    '127.0.0.1',
    String(port),
    String(sessions),
    String(parallel),
    String(secs),
    '20',
    't',
    'dev',
    KEY_HEX,
  ]);
  // dtlsload exits 1 when handshakes failed; its figures are still printed.
  const out = spawnSync(cmd, args, { timeout: (secs + 300) * 1000 }).stdout.toString();
  const hs = /handshakes ok=(\d+) failed=(\d+) .* rate=(\d+)\/s/.exec(out);
  const ex = /done=\d+ rate=(\d+)\/s p50_ms=[\d.]+ p99_ms=([\d.]+)/.exec(out);
  return {
    handshakesPerSecond: hs ? Number(hs[3]) : 0,
    handshakesFailed: hs ? Number(hs[2]) : 0,
    exchangesPerSecond: ex ? Number(ex[1]) : 0,
    p99ms: ex ? Number(ex[2]) : 0,
  };
}

interface Server {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startCellgate(devices: number): Promise<Server> {
  const [cmd, args] = pin(0, process.execPath, [resolve('dist/bench/dtls-load-server.js'), String(devices)]);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((r) => lines.once('line', (l) => r(Number(l.split(' ')[1]))));
  // taskset execs the server, so the child's pid is the server's.
  return { port, pid: child.pid!, stop: () => stop(child) };
}

async function startLibcoap(): Promise<Server> {
  const port = await freePort();
  const [cmd, args] = pin(0, 'coap-server-openssl', [
    '-A',
    '127.0.0.1',
    '-p',
    String(port),
    '-k',
    'secretPSK',
    '-v',
    '0',
  ]);
  const child = spawn(cmd, args, { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  return { port: port + 1, pid: child.pid!, stop: () => stop(child) };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
  });
}

async function measure(name: string, start: () => Promise<Server>, bin: string): Promise<void> {
  for (const sc of SCENARIOS) {
    const server = await start();
    // A running server is warm: 2,000 handshakes first (same devices; their sessions are replaced).
    runLoad(bin, server.port, 2000, 100, 0);
    const before = usageOf(server.pid);
    const r = runLoad(bin, server.port, sc.sessions, sc.parallel, sc.seconds);
    const after = usageOf(server.pid);
    await server.stop();
    const cpu = after.cpuSeconds - before.cpuSeconds;
    const label = `${name.padEnd(20)} ${String(sc.sessions).padStart(6)} sessions:`;
    if (sc.what === 'handshakes') {
      console.log(
        `${label} ${String(r.handshakesPerSecond).padStart(6)} handshakes/s (${r.handshakesFailed} failed), server CPU ${((cpu * 1e6) / sc.sessions).toFixed(0)} us per handshake, ` +
          `resident +${((after.rss - before.rss) / sc.sessions / 1024).toFixed(1)} KB per session`,
      );
    } else {
      const exchanges = r.exchangesPerSecond * sc.seconds;
      console.log(
        `${label} ${String(r.exchangesPerSecond).padStart(6)} exchanges/s (p99 ${r.p99ms} ms), ` +
          `server CPU ${exchanges ? ((cpu * 1e6) / exchanges).toFixed(1) : '-'} us per exchange (handshakes included)`,
      );
    }
  }
}

async function main(): Promise<void> {
  const bin = dtlsload();
  if (!bin) {
    console.log('dtls-load: skipped, dtlsload not found (set DTLSLOAD or DTLSLOAD_SRC)');
    return;
  }
  console.log(
    `dtls-load: dtlsload, ${seconds} s per run, 20-byte CON POSTs${pinned ? ', server on core 0, load on core 1' : ''}`,
  );
  await measure('cellgate', () => startCellgate(10_000), bin);
  if (has('coap-server-openssl')) await measure('coap-server-openssl', startLibcoap, bin);
  else console.log('coap-server-openssl: not installed (apt-get install libcoap3-bin)');
}

void main();
