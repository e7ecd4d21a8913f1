/**
 * The README's quickstart, run as written: `npm start` (on ephemeral loopback ports and a temporary uplinks
 * file, set through the environment overrides the README describes, since other gateways may hold 5683, 5684
 * and 8080), then every `coap-client-notls` and `curl` command of the section with the port filled in, each
 * output compared with what the README shows; last, SIGTERM to npm stops the gateway.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from '../support/child-gateway.js';
import { reap } from '../support/reaper.js';
import { packageVersion } from '../../src/ops/version.js';

interface Block {
  lang: string;
  text: string;
}

function quickstart(): Block[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('## Quickstart'),
    readme.indexOf('\n## ', readme.indexOf('## Quickstart') + 5),
  );
  return [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] }));
}

function sh(command: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = reap(
      spawn('sh', ['-c', command], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }),
      {
        group: true,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('README quickstart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-quickstart-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('does what the README says, command by command', async () => {
    assertBuilt();
    const blocks = quickstart();
    const [install] = blocks;
    expect(install.text).toMatch(/^npm ci .*\nnpm start .*examples\/cellgate\.yaml\n$/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    expect(pkg.scripts.start).toBe('exec node dist/src/cli.js start --config examples/cellgate.yaml');

    const uplinks = join(dir, 'uplinks.jsonl');
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      detached: true,
      env: {
        ...process.env,
        CELLGATE_COAP__BIND: '127.0.0.1',
        CELLGATE_COAP__PORT: '0',
        CELLGATE_COAP__DTLS_PORT: '0',
        CELLGATE_HTTP__BIND: '127.0.0.1',
        CELLGATE_HTTP__PORT: '0',
        CELLGATE_PUBLISHER__PATH: uplinks,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reap(npm, { group: true });
    const exited = new Promise<number | null>((r) => npm.on('exit', (code) => r(code)));
    const logs: Record<string, unknown>[] = [];
    let stderr = '';
    npm.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let pending = '';
    npm.stdout.setEncoding('utf8').on('data', (d: string) => {
      pending += d;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    try {
      await expect
        .poll(() => logs.find((l) => l.msg === 'cellgate listening'), { timeout: 15_000, interval: 50 })
        .toBeDefined();
      const ready = logs.find((l) => l.msg === 'cellgate listening') as Record<string, string | number>;
      // The start-up line the README shows: the same fields, these values.
      const shown = JSON.parse(blocks[1].text) as Record<string, unknown>;
      expect(Object.keys(ready).sort()).toEqual(Object.keys(shown).sort());
      expect(ready).toMatchObject({
        level: 'info',
        service: 'cellgate',
        version: packageVersion(),
        config: join(ROOT, 'examples/cellgate.yaml'),
        devices: shown.devices,
        uplinks: `file ${uplinks}`,
        downlinks: shown.downlinks,
        admin: shown.admin,
      });
      const port = (s: unknown) => String(s).split(':').pop() as string;
      const coap = port(ready.coap);
      const http = port(ready.http);

      // Every NoSec and HTTP command of the section, on the ports of this gateway.
      const commands = blocks
        .filter((b) => b.lang === 'sh')
        .flatMap((b) => b.text.split('\n'))
        .filter((l) => /^(coap-client-notls|curl) /.test(l));
      expect(commands).toHaveLength(4);
      const outputs: string[] = [];
      for (const c of commands) {
        const local = c
          .replace('coap://127.0.0.1/', `coap://127.0.0.1:${coap}/`)
          .replace('localhost:8080', `localhost:${http}`);
        const r = await sh(local, dir);
        expect(r.code, `${c}\n${r.stderr}`).toBe(0);
        outputs.push(r.stdout);
      }

      // The first uplink, as the README shows it (ids, times and ports differ per run).
      const published = readFileSync(uplinks, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { topic: string; payload: Record<string, unknown> });
      expect(published).toHaveLength(2);
      const promised = JSON.parse(blocks[3].text) as { topic: string; payload: Record<string, unknown> };
      const varying = (p: Record<string, unknown>) => ({
        ...p,
        messageId: expect.any(String),
        receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        remote: { address: '127.0.0.1', port: expect.any(Number) },
        coap: { ...(p.coap as object), messageId: expect.any(Number) },
      });
      expect(published[0]).toEqual({ topic: promised.topic, payload: varying(promised.payload) });
      // With -t json: the fields the README lists changed, the rest as before.
      const changed = JSON.parse(blocks[5].text) as Record<string, unknown>;
      expect(published[1]).toEqual({
        topic: promised.topic,
        payload: { ...varying(promised.payload), ...changed },
      });
      // The block-wise download and the counters.
      expect(readFileSync(join(dir, 'fw.bin'))).toEqual(
        readFileSync(join(ROOT, 'examples/files/demo-firmware.bin')),
      );
      const metricsBlock = blocks.find(
        (b) => b.lang === '' && b.text.includes('cellgate_coap_requests_total'),
      );
      expect(outputs[3]).toBe(metricsBlock?.text);
    } finally {
      // Stopping npm stops the gateway: it drains and exits 0.
      npm.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('still running'), 10_000)),
      ]);
      if (code === 'still running') {
        spawn('pkill', ['-P', String(npm.pid)]);
        npm.kill('SIGKILL');
      }
      expect(code, stderr).toBe(0);
      expect(logs.at(-1)).toMatchObject({ msg: 'stopped', drained: true });
    }
  });

  it('the simulator example of docs/operations.md runs against the example devices', async () => {
    assertBuilt();
    const ops = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    const command = /^npx cellgate simulate --host 127\.0\.0\.1 .*$/m.exec(ops)?.[0];
    expect(command).toBe(
      'npx cellgate simulate --host 127.0.0.1 --devices 10 --count 10 --rate 50 --rebind 0.3',
    );
    const gw = spawn(process.execPath, ['dist/src/cli.js', 'start', '--config', 'examples/cellgate.yaml'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        CELLGATE_COAP__BIND: '127.0.0.1',
        CELLGATE_COAP__PORT: '0',
        CELLGATE_COAP__DTLS_PORT: '0',
        CELLGATE_HTTP__BIND: '127.0.0.1',
        CELLGATE_HTTP__PORT: '0',
        CELLGATE_PUBLISHER__PATH: join(dir, 'simulated.jsonl'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reap(gw);
    try {
      const ready = await new Promise<Record<string, string>>((resolve, reject) => {
        let out = '';
        gw.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const line = out.split('\n').find((l) => l.includes('"cellgate listening"'));
          if (line) resolve(JSON.parse(line) as Record<string, string>);
        });
        gw.on('exit', (code) => reject(new Error(`gateway exited ${code}`)));
      });
      const port = String(ready.coap).split(':').pop() as string;
      const r = await sh(`${command} --port ${port} --progress-ms 0`, ROOT);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^uplinks sent +100 of 100$/m);
      expect(r.stdout).toMatch(/^acknowledged +100$/m);
      expect(r.stdout).toMatch(/^failed +0$/m);
    } finally {
      gw.kill('SIGTERM');
    }
  }, 90_000);
});
