/**
 * Configuration and environment mistakes, as a user meets them: the real CLI (`cellgate start` and
 * `cellgate config check`) ends with one clear line per problem on stderr, naming the file or variable and
 * the key or entry, and exit code 78 — no stack trace unless log.level is debug.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { TestPki } from '../support/certificates.js';
import { runCli, STACK_LINE } from '../support/cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A folder with cellgate.yaml (ephemeral loopback ports unless the test says otherwise) and devices.yaml. */
function setup(config: Record<string, unknown>, devices: string | unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-startup-'));
  dirs.push(dir);
  const base = {
    coap: { bind: '127.0.0.1', port: 0, dtlsPort: 0 },
    http: { bind: '127.0.0.1', port: 0 },
    devices: { file: 'devices.yaml', watch: false },
    publisher: { type: 'null' },
  };
  writeFileSync(join(dir, 'cellgate.yaml'), stringify({ ...base, ...config }));
  writeFileSync(join(dir, 'devices.yaml'), typeof devices === 'string' ? devices : stringify(devices));
  return join(dir, 'cellgate.yaml');
}

function lines(stderr: string): string[] {
  return stderr.trimEnd().split('\n');
}

const DUPLICATES = `
- id: meter-1
  ip: 10.0.0.1
- id: tracker-1
  psk: { identity: shared, key: "text:one" }
- id: meter-1
- id: tracker-2
  psk: { identity: shared, key: "text:two" }
- id: meter-2
  ip: 10.0.0.1
- id: bad-key
  psk: { identity: bad-key, key: "hex:zz" }
`;

describe('start-up mistakes end with one line each and exit 78', () => {
  it('duplicate id, PSK identity and ip, and a schema error, all in one pass, entries named by id and position', async () => {
    const config = setup({}, DUPLICATES);
    for (const command of [['start'], ['config', 'check']]) {
      const r = await runCli([...command, '--config', config]);
      expect(r.code, r.stderr).toBe(78);
      expect(r.stderr).not.toMatch(STACK_LINE);
      const file = join(config, '..', 'devices.yaml');
      expect(lines(r.stderr)).toEqual([
        `cellgate: device file ${file}: device #3 (id "meter-1"): id: "meter-1" is already the id of device #1 (id "meter-1"); ids must be unique`,
        `cellgate: device file ${file}: device #4 (id "tracker-2"): psk.identity: "shared" is already the PSK identity of device #2 (id "tracker-1")`,
        `cellgate: device file ${file}: device #5 (id "meter-2"): ip: 10.0.0.1 is already claimed by device #1 (id "meter-1")`,
        `cellgate: device file ${file}: device #6 (id "bad-key"): psk.key: hex key is not hex: after "hex:" only the digits 0-9 and a-f may follow`,
      ]);
    }
  });

  it('aws-iot without an endpoint: start and config check refuse it alike', async () => {
    const config = setup({ publisher: { type: 'aws-iot' } }, [{ id: 'a' }]);
    for (const command of [['start'], ['config', 'check']]) {
      const r = await runCli([...command, '--config', config], { env: { AWS_REGION: 'eu-west-1' } });
      expect(r.code, r.stderr).toBe(78);
      expect(lines(r.stderr)).toEqual([
        `cellgate: config file ${config}: publisher.endpoint is required for publisher.type aws-iot: set it (or CELLGATE_PUBLISHER__ENDPOINT, or AWS_ENDPOINT_URL_IOT_DATA_PLANE) to the output of \`aws iot describe-endpoint --endpoint-type iot:Data-ATS\``,
      ]);
    }
    const ok = await runCli(['config', 'check', '--config', config], {
      env: { AWS_REGION: 'eu-west-1', CELLGATE_PUBLISHER__ENDPOINT: 'abc-ats.iot.eu-west-1.amazonaws.com' },
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/endpoint: abc-ats\.iot\.eu-west-1\.amazonaws\.com/);
  });

  it('DTLS certificate files that cannot be used: start and config check refuse them alike, naming key and file', async () => {
    const pki = new TestPki();
    try {
      const a = pki.server('one');
      const b = pki.server('two');
      const missing = setup({ dtls: { certificate: { certFile: 'nope.pem', keyFile: a.keyFile } } }, [
        { id: 'a' },
      ]);
      const mismatched = setup({ dtls: { certificate: { certFile: a.certFile, keyFile: b.keyFile } } }, [
        { id: 'a' },
      ]);
      for (const command of [['start'], ['config', 'check']]) {
        const r = await runCli([...command, '--config', missing]);
        expect(r.code, r.stderr).toBe(78);
        expect(lines(r.stderr)).toEqual([
          `cellgate: config file ${missing}: dtls.certificate.certFile: cannot read ${join(missing, '..', 'nope.pem')}: ENOENT`,
        ]);
        const m = await runCli([...command, '--config', mismatched]);
        expect(m.code, m.stderr).toBe(78);
        expect(lines(m.stderr)).toEqual([
          `cellgate: config file ${mismatched}: dtls.certificate (${a.certFile}, ${b.keyFile}): the key does not belong to the first certificate`,
        ]);
      }
    } finally {
      pki.close();
    }
  });

  it('a port in use names the key and the variable to change', async () => {
    const udp: Socket = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const tcp: Server = createServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const udpPort = udp.address().port;
    const tcpPort = (tcp.address() as { port: number }).port;
    try {
      const config = setup({}, [{ id: 'a' }]);
      const cases: [Record<string, string>, string][] = [
        [
          { CELLGATE_COAP__PORT: String(udpPort) },
          `UDP 127.0.0.1:${udpPort} is in use by another process; set coap.port or CELLGATE_COAP__PORT`,
        ],
        [
          { CELLGATE_COAP__DTLS_PORT: String(udpPort) },
          `UDP 127.0.0.1:${udpPort} is in use by another process; set coap.dtlsPort or CELLGATE_COAP__DTLS_PORT`,
        ],
        [
          { CELLGATE_HTTP__PORT: String(tcpPort) },
          `TCP 127.0.0.1:${tcpPort} is in use by another process; set http.port or CELLGATE_HTTP__PORT`,
        ],
      ];
      for (const [env, message] of cases) {
        const r = await runCli(['start', '--config', config], { env });
        expect(r.code, r.stderr).toBe(78);
        expect(lines(r.stderr)).toEqual([`cellgate: ${message}`]);
      }
      // At log.level debug the cause's stack comes too.
      const debug = await runCli(['start', '--config', config], {
        env: { CELLGATE_COAP__PORT: String(udpPort), CELLGATE_LOG__LEVEL: 'debug' },
      });
      expect(debug.code).toBe(78);
      expect(debug.stderr).toMatch(STACK_LINE);
    } finally {
      udp.close();
      tcp.close();
    }
  });

  it('environment overrides are named as the variable; camelCase keys are accepted', async () => {
    const config = setup({}, [{ id: 'a' }]);
    const bad = await runCli(['config', 'check', '--config', config], {
      env: { CELLGATE_COAP__PORT: 'abc' },
    });
    expect(bad.code).toBe(78);
    expect(lines(bad.stderr)).toEqual([
      'cellgate: environment variable CELLGATE_COAP__PORT (coap.port): Invalid input: expected number, received string',
    ]);
    const range = await runCli(['config', 'check', '--config', config], {
      env: { CELLGATE_DTLS__connectionIdLength: '99' },
    });
    expect(range.code).toBe(78);
    expect(range.stderr).toMatch(
      /^cellgate: environment variable CELLGATE_DTLS__connectionIdLength \(dtls\.connectionIdLength\): /,
    );
    for (const name of ['CELLGATE_DTLS__connectionIdLength', 'CELLGATE_DTLS__CONNECTION_ID_LENGTH']) {
      const ok = await runCli(['config', 'check', '--config', config], { env: { [name]: '4' } });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/connectionIdLength: 4/);
    }
    const unknown = await runCli(['config', 'check', '--config', config], {
      env: { CELLGATE_COAP__PROT: '1' },
    });
    expect(unknown.code).toBe(78);
    expect(unknown.stderr).toMatch(
      /^cellgate: environment variable CELLGATE_COAP__PROT: coap has no key "PROT"; the variables for its keys are CELLGATE_COAP__BIND, CELLGATE_COAP__PORT, /,
    );
    // A variable that changes a section (publisher.type) is named beside the file key it makes unknown.
    const type = await runCli(
      ['config', 'check', '--config', setup({ publisher: { type: 'file', path: 'u.jsonl' } }, [])],
      {
        env: { CELLGATE_PUBLISHER__TYPE: 'null' },
      },
    );
    expect(type.code).toBe(78);
    expect(type.stderr).toMatch(
      /publisher\.path: unknown key \(the environment sets CELLGATE_PUBLISHER__TYPE\)/,
    );
    // Variables without a double underscore are not overrides: Kubernetes sets these for a Service named cellgate.
    const k8s = await runCli(['config', 'check', '--config', config], {
      env: {
        CELLGATE_SERVICE_HOST: '10.0.0.7',
        CELLGATE_PORT: 'udp://10.0.0.7:5683',
        CELLGATE_PORT_5683_UDP_PROTO: 'udp',
      },
    });
    expect(k8s.code, k8s.stderr).toBe(0);
    // A mistake in the file is still blamed on the file.
    const file = setup({ coap: { port: 'abc' } }, [{ id: 'a' }]);
    const r = await runCli(['config', 'check', '--config', file]);
    expect(lines(r.stderr)).toEqual([
      `cellgate: config file ${file}: coap.port: Invalid input: expected number, received string`,
    ]);
  });

  it('config check reads the device file and passes only what start would get past', async () => {
    const good = setup({}, [{ id: 'a' }, { id: 'b', psk: { identity: 'b', key: 'hex:0011' } }]);
    const ok = await runCli(['config', 'check', '--config', good]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(lines(ok.stderr)).toEqual([
      `cellgate: ${good} is valid, with 2 devices in ${join(good, '..', 'devices.yaml')}`,
    ]);
    // A codec that cannot be created does not stop start (the devices' uplinks carry the error): a warning.
    const codecs = setup({}, [
      { id: 'a', codec: 'nope' },
      { id: 'b', codec: { name: 'protobuf' } },
    ]);
    const warned = await runCli(['config', 'check', '--config', codecs]);
    expect(warned.code, warned.stderr).toBe(0);
    expect(lines(warned.stderr)).toEqual([
      'cellgate: warning: codec nope (devices a): unknown codec "nope" (built-in: raw, json, cbor, senml, protobuf, js)',
      'cellgate: warning: codec protobuf (devices b): protobuf codec options: "proto" is required; "type" is required',
      `cellgate: ${codecs} is valid, with 2 devices in ${join(codecs, '..', 'devices.yaml')}`,
    ]);
    const missing = setup({ devices: { file: 'nowhere.yaml' } }, []);
    const r = await runCli(['config', 'check', '--config', missing]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^cellgate: cannot read device file .*nowhere\.yaml: ENOENT/);
  });

  it('a mistyped option is a usage error (exit 2), not a stack trace', async () => {
    for (const args of [
      ['start', '--cnfig', 'x.yaml'],
      ['config', 'check', '--bogus'],
      ['healthcheck', '--bogus'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^cellgate: Unknown option '--(cnfig|bogus)'/);
      expect(r.stderr).toContain('Usage: cellgate <command>');
      expect(r.stderr).not.toMatch(STACK_LINE);
    }
  });

  it('folders the publisher writes in: a file in the way, an outbox another process holds', async () => {
    const config = setup({ publisher: { type: 'file', path: 'in-the-way/uplinks.jsonl' } }, [{ id: 'a' }]);
    writeFileSync(join(config, '..', 'in-the-way'), 'x');
    for (const command of [['start'], ['config', 'check']]) {
      const r = await runCli([...command, '--config', config]);
      expect(r.code, r.stderr).toBe(78);
      expect(lines(r.stderr)).toEqual([
        `cellgate: config file ${config}: publisher.path: ${join(config, '..', 'in-the-way')} is a file, not a folder`,
      ]);
    }
    // This test process holds the outbox: start says so, naming the key and the variable.
    const held = setup({ publisher: { type: 'null', ack: 'after-outbox', outbox: { dir: 'outbox' } } }, [
      { id: 'a' },
    ]);
    const outbox = join(held, '..', 'outbox');
    mkdirSync(outbox);
    writeFileSync(join(outbox, 'lock'), `${hostname()} ${process.pid}\n`);
    const r = await runCli(['start', '--config', held]);
    expect(r.code, r.stderr).toBe(78);
    expect(lines(r.stderr)).toEqual([
      `cellgate: publisher.outbox.dir: outbox ${outbox} is in use by process ${process.pid} on this host: stop it, or give this gateway its own outbox folder (CELLGATE_PUBLISHER__OUTBOX__DIR)`,
    ]);
  });
});
