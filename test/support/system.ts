/**
 * System peers the tests talk to (libcoap, GnuTLS, OpenSSL, Redis, Mosquitto, the AWS CLI, socat, netcat,
 * FreeRADIUS's radclient). Missing ones are installed
 * with apt-get when running as root; otherwise the test run fails with a message saying what to install.
 * Services that are down are started. Nothing is skipped silently.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

export interface SystemPeer {
  command: string;
  pkg: string;
}

export const SYSTEM_PEERS: SystemPeer[] = [
  { command: 'coap-client-notls', pkg: 'libcoap3-bin' },
  { command: 'coap-client-openssl', pkg: 'libcoap3-bin' },
  { command: 'coap-client-gnutls', pkg: 'libcoap3-bin' },
  { command: 'coap-server-notls', pkg: 'libcoap3-bin' },
  { command: 'gnutls-cli', pkg: 'gnutls-bin' },
  { command: 'openssl', pkg: 'openssl' },
  { command: 'redis-server', pkg: 'redis-server' },
  { command: 'redis-cli', pkg: 'redis-tools' },
  { command: 'mosquitto', pkg: 'mosquitto' },
  { command: 'mosquitto_sub', pkg: 'mosquitto-clients' },
  { command: 'aws', pkg: 'awscli' },
  { command: 'curl', pkg: 'curl' },
  { command: 'socat', pkg: 'socat' },
  { command: 'nc', pkg: 'netcat-openbsd' },
  { command: 'radclient', pkg: 'freeradius-utils' },
];

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Installs the Debian packages behind missing commands, or throws saying what to install. */
export function ensureCommands(peers: SystemPeer[] = SYSTEM_PEERS): void {
  const missing = peers.filter((p) => !hasCommand(p.command));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((p) => p.pkg))];
  if (!isRoot()) {
    throw new Error(
      `tests need ${missing.map((p) => p.command).join(', ')}: install them with ` +
        `"sudo apt-get install -y ${pkgs.join(' ')}" and run the tests again`,
    );
  }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const still = peers.filter((p) => !hasCommand(p.command));
  if (still.length) throw new Error(`apt-get did not provide ${still.map((p) => p.command).join(', ')}`);
}

export function tcpReachable(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A TCP port nothing listens on right now (the server the caller starts binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(port: number, tries = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await tcpReachable(port)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Starts Redis (127.0.0.1:6379) and Mosquitto (127.0.0.1:1883) when they are down. */
export async function ensureServices(): Promise<void> {
  if (!(await tcpReachable(6379))) {
    spawnSync(
      'redis-server',
      ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    if (!(await waitFor(6379)))
      throw new Error('Redis is not reachable on 127.0.0.1:6379 and could not be started');
  }
  if (!(await tcpReachable(1883))) {
    const conf = '/etc/mosquitto/mosquitto.conf';
    spawnSync('mosquitto', hasConf(conf) ? ['-d', '-c', conf] : ['-d', '-p', '1883'], { stdio: 'ignore' });
    if (!(await waitFor(1883)))
      throw new Error('Mosquitto is not reachable on 127.0.0.1:1883 and could not be started');
  }
}

function hasConf(path: string): boolean {
  return spawnSync('test', ['-f', path]).status === 0;
}
