/**
 * The Dockerfile, checked without a Docker engine: its stages, the runtime user, ports and healthcheck, that
 * every file it copies from the build context exists and is not excluded by .dockerignore, that the files it
 * copies out of the build stage are what its compile step produces from what it copied in, that the runtime imports only production
 * dependencies, and that the image's default configuration and healthcheck command work.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { readDeviceFile } from '../../src/devices/file-registry.js';
import { assertBuilt, CLI, ROOT } from '../support/child-gateway.js';
import { startTestGateway } from '../support/gateway.js';

const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages (line continuations joined, comments dropped, ARGs before FROM applied). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse Dockerfile line: ${line}`);
    const op = m[1].toUpperCase();
    const rest = m[2].replace(/\s+/g, ' ');
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      args.set(k, v ?? '');
      continue;
    }
    if (op === 'FROM') {
      const from = /^(\S+)(?: AS (\S+))?$/i.exec(
        rest.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? ''),
      );
      if (!from) throw new Error(`bad FROM: ${rest}`);
      stages.push({ base: from[1], name: from[2], instructions: [] });
      continue;
    }
    if (stages.length === 0) throw new Error(`${op} before FROM`);
    stages.at(-1)!.instructions.push({ op, args: rest });
  }
  return stages;
}

/** `.dockerignore` semantics: the last matching pattern wins, `!` re-includes, a matched folder covers its files. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegex = (p: string) =>
    new RegExp(
      '^' +
        p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*\//g, '\u0001')
          .replace(/\*\*/g, '.*')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .split('\u0001')
          .join('(?:.*/)?') +
        '(?:/.*)?$',
    );
  let ignored = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const p = (neg ? raw.slice(1) : raw).replace(/^\/+/, '');
    if (toRegex(p).test(path)) ignored = !neg;
  }
  return ignored;
}

function filesUnder(dir: string): string[] {
  if (!statSync(dir).isDirectory()) return [dir];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const runtime = dockerfile.at(-1)!;
const ops = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('builds in one stage and runs on a small base in another, as a numeric non-root user', () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile[0]).toMatchObject({ name: 'build' });
    expect(dockerfile[0].base).toMatch(/^node:24-bookworm-slim$/);
    expect(runtime.name).toBe('runtime');
    expect(runtime.base).toBe('gcr.io/distroless/nodejs24-debian12:nonroot');
    // Nothing of the build toolchain reaches the runtime stage except through explicit COPYs.
    expect(ops(runtime, 'RUN')).toEqual([]);
    const user = ops(runtime, 'USER');
    expect(user).toHaveLength(1);
    const [uid, gid] = user[0].split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
  });

  it('exposes 5683/udp, 5684/udp and 8080/tcp and checks its health with the CLI', () => {
    const ports = ops(runtime, 'EXPOSE').flatMap((e) => e.split(' '));
    expect(ports).toEqual(expect.arrayContaining(['5683/udp', '5684/udp', '8080/tcp']));
    const hc = ops(runtime, 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const exec = /CMD (\[.*\])$/.exec(hc[0]);
    expect(exec, 'exec-form CMD (the runtime has no shell)').not.toBeNull();
    expect(JSON.parse(exec![1])).toEqual(['/nodejs/bin/node', '/app/dist/src/cli.js', 'healthcheck']);
    expect(JSON.parse(ops(runtime, 'ENTRYPOINT')[0])).toEqual(['/nodejs/bin/node', '/app/dist/src/cli.js']);
    expect(JSON.parse(ops(runtime, 'CMD')[0])).toEqual(['start']);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const names = new Set(dockerfile.map((s) => s.name));
    let copied = 0;
    for (const stage of dockerfile) {
      for (const args of ops(stage, 'COPY')) {
        const words = args.split(' ');
        const from = words.find((w) => w.startsWith('--from='));
        const paths = words.filter((w) => !w.startsWith('--'));
        const sources = paths.slice(0, -1);
        if (from) {
          expect(names.has(from.slice('--from='.length)), args).toBe(true);
          continue;
        }
        for (const src of sources) {
          const abs = join(ROOT, src);
          expect(existsSync(abs), `${src} exists`).toBe(true);
          for (const f of filesUnder(abs)) {
            expect(
              dockerIgnored(ignore, relative(ROOT, f)),
              `${relative(ROOT, f)} is in the build context`,
            ).toBe(false);
            copied++;
          }
        }
      }
    }
    expect(copied).toBeGreaterThan(10);
    // The .dockerignore matcher itself: folders cover their files, the last pattern wins.
    expect(dockerIgnored(ignore, 'node_modules/yaml/index.js')).toBe(true);
    expect(dockerIgnored(ignore, 'test/coap/message.test.ts')).toBe(true);
    expect(dockerIgnored(ignore, 'test/support/no-native-aead/index.js')).toBe(false);
    expect(dockerIgnored(ignore, 'examples/uplinks.jsonl')).toBe(true);
  });

  it('copies out of the build stage what its compile step produces, and the runtime needs only production dependencies', () => {
    assertBuilt();
    const build = ops(dockerfile[0], 'RUN').join(' ');
    expect(build).toContain('npx tsc -p tsconfig.image.json');
    expect(build).toMatch(/npm prune --omit=dev/);
    expect(build).toContain('cp -r dist/src dist/codecs /out/app/dist/');
    expect(existsSync(join(ROOT, 'dist/src/cli.js'))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
    const imports = new Set<string>();
    for (const f of [...filesUnder(join(ROOT, 'dist/src')), ...filesUnder(join(ROOT, 'dist/codecs'))]) {
      if (!f.endsWith('.js')) continue;
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:from|import\()\s*['"]([^'".][^'"]*)['"]/g)) {
        const spec = m[1].replace(/^node:/, '');
        imports.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
    expect(imports.size).toBeGreaterThan(3);
    for (const name of imports)
      expect(allowed.has(name), `runtime import ${name} is a production dependency`).toBe(true);
  });

  it('compiles only files the build stage copied in', async () => {
    const copied = ops(dockerfile[0], 'COPY')
      .filter((c) => !c.includes('--from'))
      .flatMap((c) => c.split(' ').slice(0, -1));
    const { stdout } = await run(process.execPath, [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(ROOT, 'tsconfig.image.json'),
      '--listFilesOnly',
    ]);
    const files = stdout
      .split('\n')
      .filter(Boolean)
      .map((f) => relative(ROOT, f))
      .filter((f) => !f.startsWith('node_modules/'));
    expect(files.length).toBeGreaterThan(50);
    expect(files).toContain('src/cli.ts');
    for (const f of files) {
      expect(
        copied.some((c) => f === c || f.startsWith(c.replace(/\/$/, '') + '/')),
        `${f} is compiled in the image but not copied into its build stage`,
      ).toBe(true);
    }
  });

  it('ships a default configuration that loads, with a device file that parses', () => {
    const copies = ops(runtime, 'COPY').filter((c) => c.startsWith('docker/'));
    expect(copies).toEqual([
      'docker/cellgate.yaml /etc/cellgate/cellgate.yaml',
      'docker/devices.yaml /etc/cellgate/devices/devices.yaml',
    ]);
    const env = ops(runtime, 'ENV').join(' ');
    expect(env).toContain('CELLGATE_CONFIG=/etc/cellgate/cellgate.yaml');
    const { config } = loadConfig(join(ROOT, 'docker/cellgate.yaml'), {});
    expect(config.devices.file).toBe(join(ROOT, 'docker/devices/devices.yaml'));
    expect(config.http.port).toBe(8080);
    expect(config.publisher).toMatchObject({ type: 'file', path: '/var/lib/cellgate/uplinks.jsonl' });
    expect(readDeviceFile(join(ROOT, 'docker/devices.yaml'))).toEqual([]);
  });

  it('healthcheck exits 0 when the gateway answers and 1 when it does not', async () => {
    assertBuilt();
    const gw = await startTestGateway();
    try {
      const ok = await run(
        process.execPath,
        [CLI, 'healthcheck', '--config', join(gw.dir, 'cellgate.yaml')],
        {
          env: { PATH: process.env.PATH, CELLGATE_HTTP__PORT: String(gw.ports.http) },
        },
      );
      expect(ok.stdout).toBe('');
      await run(process.execPath, [CLI, 'healthcheck', '--url', `http://127.0.0.1:${gw.ports.http}/readyz`]);
      gw.recorder.failWithRetryAfter = 5;
      await expect(
        run(process.execPath, [CLI, 'healthcheck', '--url', `http://127.0.0.1:${gw.ports.http}/readyz`]),
      ).rejects.toMatchObject({ code: 1 });
      const port = gw.ports.http;
      await gw.stop();
      await expect(
        run(process.execPath, [CLI, 'healthcheck', '--url', `http://127.0.0.1:${port}/healthz`]),
      ).rejects.toMatchObject({ code: 1 });
    } finally {
      await gw.stop();
    }
  });
});
