/**
 * The plugin guide's first steps, as written: `npm install && npm test` in examples/codec-plugin itself, in a
 * copy inside the repository (`cp -r examples/codec-plugin my-codec`) and in a copy anywhere else; then
 * `npm run build` and the gateway's `codec test` / `codec encode` on the built plugin, run from the plugin's
 * folder the way docs/codec-plugins.md shows. Installs come from the local npm cache when it has the
 * packages (the example ships its lock file).
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBuilt, ROOT } from '../support/child-gateway.js';
import { reap } from '../support/reaper.js';

const EXAMPLE = join(ROOT, 'examples/codec-plugin');
const cleanup: string[] = [];
afterAll(() => cleanup.forEach((p) => rmSync(p, { recursive: true, force: true })));

function sh(command: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    // The user's environment, minus what the test runner adds (vitest's own variables).
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(VITEST|TEST|FORCE_COLOR)/.test(k)),
    );
    env.NO_COLOR = '1';
    const child = reap(
      spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }),
      {
        group: true,
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: stripVTControlCharacters(out) });
    });
  });
}

const npm = (args: string[], cwd: string) => sh('npm', args, cwd);
/** `npm install`, quietly, from the local cache when it holds the packages. */
const install = (cwd: string) => npm(['install', '--prefer-offline', '--no-audit', '--no-fund'], cwd);

function copyExample(to: string): string {
  cpSync(EXAMPLE, to, {
    recursive: true,
    filter: (src) => !/[/\\](node_modules|dist)([/\\]|$)/.test(src.slice(EXAMPLE.length)),
  });
  return to;
}

async function installAndTest(dir: string): Promise<void> {
  const i = await install(dir);
  expect(i.code, i.out).toBe(0);
  const t = await npm(['test'], dir);
  expect(t.code, t.out).toBe(0);
  expect(t.out).toMatch(/Test Files\s+1 passed/);
  expect(t.out).not.toMatch(/global-setup|No test files found/);
}

describe('examples/codec-plugin on its own (npm install && npm test)', () => {
  it('passes in place', async () => {
    const hadModules = existsSync(join(EXAMPLE, 'node_modules'));
    if (!hadModules) cleanup.push(join(EXAMPLE, 'node_modules'));
    await installAndTest(EXAMPLE);
  });

  it('passes copied into the repository (cp -r examples/codec-plugin my-codec), the guide’s first step', async () => {
    // tmp/ in the repository is ignored by git.
    mkdirSync(join(ROOT, 'tmp'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, 'tmp', 'my-codec-'));
    cleanup.push(dir);
    await installAndTest(copyExample(dir));
  });

  it('passes copied outside the repository, builds, and runs under the gateway’s codec commands', async () => {
    assertBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'my-codec-'));
    cleanup.push(dir);
    await installAndTest(copyExample(dir));
    const build = await npm(['run', 'build'], dir);
    expect(build.code, build.out).toBe(0);
    // Step 4 of docs/codec-plugins.md, as written there, from the plugin's folder, the gateway's folder given
    // with --prefix.
    const guide = readFileSync(join(ROOT, 'docs/codec-plugins.md'), 'utf8');
    const commands = [...guide.matchAll(/^ *(npx --prefix \.\.\/cellgate cellgate codec .*)$/gm)].map(
      (m) => m[1],
    );
    expect(commands).toHaveLength(2);
    const [decoded, encoded] = await Promise.all(
      commands.map((c) => sh('sh', ['-c', c.replace('--prefix ../cellgate', `--prefix '${ROOT}'`)], dir)),
    );
    expect(decoded.code, decoded.out).toBe(0);
    expect(JSON.parse(decoded.out)).toEqual({
      volume: 123.456,
      unit: 'm3',
      temperature: 12.34,
      batteryMv: 3600,
      alarms: ['leak', 'tamper'],
    });
    expect(guide.replace(/\s+/g, ' ')).toContain(
      '{"volume": 123.456, "unit": "m3", "temperature": 12.34, "batteryMv": 3600, "alarms": ["leak", "tamper"]}',
    );
    expect(encoded.code, encoded.out).toBe(0);
    expect(encoded.out).toBe('01000f\n3 bytes (Content-Format 42)\n');
  });
});
