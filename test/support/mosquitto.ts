/**
 * Mosquitto for the MQTT tests: `mosquitto_sub` as an independent subscriber, a private broker with TLS and
 * X.509 client certificates on an ephemeral port, and the certificates for it made with the `openssl` CLI.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { reap } from './reaper.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpReachable } from './system.js';

export interface Received {
  topic: string;
  qos: number;
  contentType: string;
  payloadFormat: string;
  userProperties: [string, string][];
  payload: string;
}

const SEP = '\u0001';

/** Runs `mosquitto_sub` on `filter` and collects what it prints, one message per line. */
export class Subscriber {
  readonly messages: Received[] = [];
  private readonly proc: ChildProcess;
  private buffered = '';
  private stderr = '';

  constructor(
    port: number,
    filter: string,
    extraArgs: string[] = [],
    version: 'mqttv5' | 'mqttv311' = 'mqttv5',
  ) {
    const format = ['%t', '%q', '%C', '%F', '%P', '%p'].join(SEP);
    // stdbuf: mosquitto_sub writes through stdio, which a pipe would buffer.
    this.proc = reap(
      spawn(
        'stdbuf',
        [
          '-oL',
          'mosquitto_sub',
          '-V',
          version,
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-q',
          '1',
          '-t',
          filter,
          '-F',
          format,
          '-d',
          ...extraArgs,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.proc.stdout!.on('data', (d: Buffer) => this.take(d.toString('utf8')));
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  private subscribed = false;

  private take(text: string): void {
    this.buffered += text;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      if (line.includes('received SUBACK')) this.subscribed = true;
      const f = line.split(SEP);
      if (f.length !== 6) continue; // a debug line of -d
      this.messages.push({
        topic: f[0],
        qos: Number(f[1]),
        contentType: f[2],
        payloadFormat: f[3],
        userProperties: f[4]
          ? f[4].split(' ').map((kv) => [kv.slice(0, kv.indexOf(':')), kv.slice(kv.indexOf(':') + 1)])
          : [],
        payload: f[5],
      });
    }
  }

  /** Resolves once the broker confirmed the subscription. */
  async ready(timeoutMs = 5000): Promise<void> {
    const t0 = Date.now();
    while (!this.subscribed) {
      if (this.proc.exitCode !== null) throw new Error(`mosquitto_sub exited: ${this.stderr}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`mosquitto_sub did not subscribe: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitFor(count: number, timeoutMs = 10_000): Promise<void> {
    const t0 = Date.now();
    while (this.messages.length < count) {
      if (Date.now() - t0 > timeoutMs)
        throw new Error(`subscriber saw ${this.messages.length} of ${count} messages; ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the broker does not trust. */
  rogueCert: string;
  rogueKey: string;
}

/** A CA, a server certificate for 127.0.0.1 and client certificates, made with the openssl CLI. */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-pki-'));
  const p = (f: string) => join(dir, f);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => {
    ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.pem`),
    );
  };
  const leaf = (name: string, issuer: string, ext: string) => {
    writeFileSync(p(`${name}.ext`), ext);
    ossl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.csr`),
    );
    ossl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p(`${issuer}.pem`),
      '-CAkey',
      p(`${issuer}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      p(`${name}.ext`),
      '-out',
      p(`${name}.pem`),
    );
  };
  ca('test-ca');
  ca('rogue-ca');
  leaf('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('device-gateway', 'test-ca', 'extendedKeyUsage=clientAuth\n');
  leaf('rogue', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: p('test-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('device-gateway.pem'),
    clientKey: p('device-gateway.key'),
    rogueCert: p('rogue.pem'),
    rogueKey: p('rogue.key'),
  };
}

/** A private Mosquitto that only takes TLS clients with a certificate from `pki`'s CA. */
export class TlsBroker {
  private constructor(
    readonly port: number,
    private readonly proc: ChildProcess,
    private readonly log: () => string,
  ) {}

  static async start(pki: Pki): Promise<TlsBroker> {
    for (let tries = 0; ; tries++) {
      const port = await freePort();
      const conf = join(pki.dir, `mosquitto-${port}.conf`);
      writeFileSync(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          `cafile ${pki.ca}`,
          `certfile ${pki.serverCert}`,
          `keyfile ${pki.serverKey}`,
          'require_certificate true',
          'use_identity_as_username true',
          'allow_anonymous true',
          'persistence false',
          'log_dest stderr',
          'user root',
          '',
        ].join('\n'),
      );
      let log = '';
      const proc = reap(spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
      proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      for (let i = 0; i < 50 && proc.exitCode === null; i++) {
        if (await tcpReachable(port)) return new TlsBroker(port, proc, () => log);
        await new Promise((r) => setTimeout(r, 50));
      }
      proc.kill('SIGKILL');
      if (tries >= 3) throw new Error(`private mosquitto did not start: ${log}`);
    }
  }

  logText(): string {
    return this.log();
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

export function removePki(pki: Pki): void {
  rmSync(pki.dir, { recursive: true, force: true });
}
