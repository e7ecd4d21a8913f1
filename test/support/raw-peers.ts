/**
 * Raw datagram peers: socat and OpenBSD netcat send bytes from standard input as one UDP datagram and print
 * what comes back; OpenSSL's s_client does the same over DTLS 1.2 with a PSK.
 */
import { spawn } from 'node:child_process';
import { reap } from './reaper.js';

export interface PeerRun {
  /** Everything the peer printed (the reply datagrams). */
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

function run(
  command: string,
  args: string[],
  input: Buffer | undefined,
  timeoutMs: number,
): Promise<PeerRun> {
  return new Promise((resolve, reject) => {
    const p = reap(spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: err, code });
    });
    if (input) p.stdin.end(input);
    else p.stdin.end();
  });
}

/**
 * Sends `bytes` as one datagram with socat (from `source`, default 127.0.0.1) and returns what came back within
 * `waitMs`.
 */
export function socatSend(
  port: number,
  bytes: Buffer,
  opts: { source?: string; waitMs?: number } = {},
): Promise<PeerRun> {
  const source = opts.source ?? '127.0.0.1';
  const wait = (opts.waitMs ?? 500) / 1000;
  return run('socat', ['-t', String(wait), '-', `UDP4:127.0.0.1:${port},bind=${source}:0`], bytes, 10_000);
}

/** Sends `bytes` as one datagram with `nc -u` and returns what came back within `waitMs`. */
export function ncSend(port: number, bytes: Buffer, opts: { waitMs?: number } = {}): Promise<PeerRun> {
  const wait = Math.max(1, Math.round((opts.waitMs ?? 1000) / 1000));
  return run('nc', ['-u', '-w', String(wait), '127.0.0.1', String(port)], bytes, 10_000);
}

/** `count` UDP ports nothing is bound to right now (the raw listeners treat port 0 as off). */
export async function freeUdpPorts(count: number): Promise<number[]> {
  const { createSocket } = await import('node:dgram');
  const sockets = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:dgram').Socket>((resolve) => {
          const s = createSocket('udp4');
          s.bind(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/**
 * Sends one accounting request with FreeRADIUS's radclient (`attributes` as radclient reads them, e.g.
 * `Acct-Status-Type = Start, Framed-IP-Address = 127.0.0.2`); one try, `timeoutS` to wait for the answer.
 */
export function radclient(port: number, secret: string, attributes: string, timeoutS = 2): Promise<PeerRun> {
  return run(
    'radclient',
    ['-r', '1', '-t', String(timeoutS), '-x', `127.0.0.1:${port}`, 'acct', secret],
    Buffer.from(attributes + '\n'),
    (timeoutS + 5) * 1000,
  );
}
