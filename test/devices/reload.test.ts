/**
 * Registry reload on a running gateway: a changed device file (written in place, or swapped the way
 * Kubernetes updates a mounted Secret), changed key files, SIGHUP on the real process; a bad file keeps the
 * devices loaded before; removed devices (or changed keys) are reported so their sessions end.
 */
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Code } from '../../src/coap/constants.js';
import { parseMessage, type CoapMessage } from '../../src/coap/message.js';
import { FileRegistry } from '../../src/devices/file-registry.js';
import type { RegistryChange } from '../../src/devices/registry.js';
import { silentLogger } from '../../src/ops/logger.js';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.js';
import { conUplink } from '../support/coap-uplink.js';
import { connectDtls, type DtlsUdpClient } from '../support/dtls-client.js';
import { until } from '../support/dtls-harness.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { UdpClient } from '../support/udp-client.js';

async function uplink(port: number, id: string): Promise<number> {
  const c = await UdpClient.open();
  try {
    const b = await c.request(conUplink('t', [`id=${id}`]), port, 3000);
    if (!b) throw new Error('no answer');
    return (parseMessage(b) as CoapMessage).code;
  } finally {
    await c.close();
  }
}

/** One CON uplink over an established DTLS session; the response code. */
async function coapOverDtls(client: DtlsUdpClient): Promise<number> {
  const answer = await client.request(conUplink('t', [], 'over dtls'));
  return (parseMessage(answer) as CoapMessage).code;
}

function nextChange(gw: TestGateway): Promise<RegistryChange> {
  return new Promise((resolve) => {
    const off = gw.registry.onChange((c) => {
      off();
      resolve(c);
    });
  });
}

async function scrape(gw: { ports: { http: number } }): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.ports.http}/metrics`)).text();
}

describe('registry reload on a running gateway', () => {
  let gw: TestGateway | undefined;
  let child: ChildGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    await child?.cleanup();
    gw = undefined;
    child = undefined;
  });

  it('picks up a changed file, refuses removed devices, keeps the old set when the new file is bad', async () => {
    gw = await startTestGateway({
      devices: [{ id: 'a' }, { id: 'b' }],
      config: { devices: { watch: true } },
    });
    const file = join(gw.dir, 'devices.yaml');
    expect(await uplink(gw.coapPort, 'a')).toBe(Code.CHANGED);
    expect(await uplink(gw.coapPort, 'c')).toBe(Code.UNAUTHORIZED);

    let change = nextChange(gw);
    writeFileSync(file, stringify([{ id: 'b' }, { id: 'c' }]));
    expect((await change).removed).toEqual(['a']);
    expect(await uplink(gw.coapPort, 'c')).toBe(Code.CHANGED);
    expect(await uplink(gw.coapPort, 'a')).toBe(Code.UNAUTHORIZED);

    writeFileSync(file, '- id: [broken\n');
    await gw.registry.reload();
    expect(await uplink(gw.coapPort, 'c')).toBe(Code.CHANGED);
    const metrics = await scrape(gw);
    expect(metrics).toMatch(/cellgate_registry_reloads_total\{outcome="ok"\} [1-9]/);
    expect(metrics).toMatch(/cellgate_registry_reloads_total\{outcome="rejected"\} [1-9]/);
    expect(metrics).toContain('cellgate_devices 2');

    change = nextChange(gw);
    writeFileSync(file, stringify([{ id: 'c' }]));
    expect((await change).removed).toEqual(['b']);
  });

  it('follows a Secret-style mount (atomic ..data swap) and key files, reporting devices whose key changed', async () => {
    // A Kubernetes Secret volume: files are links into ..data, which links to a timestamped folder.
    const mount = join(mkdtempSync(join(tmpdir(), 'cellgate-secret-')), 'secret');
    const version = (name: string, files: Record<string, string>) => {
      mkdirSync(join(mount, name), { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(mount, name, f), text);
    };
    const devicesFile = stringify([
      { id: 'k1', psk: { identity: 'k1', keyFile: 'k1.key' } },
      { id: 'k2', psk: { identity: 'k2', keyFile: 'k2.key' } },
      { id: 'n1' },
    ]);
    version('..2026_01', { 'devices.yaml': devicesFile, 'k1.key': 'hex:0101', 'k2.key': 'text:two\n' });
    symlinkSync('..2026_01', join(mount, '..data'));
    for (const f of ['devices.yaml', 'k1.key', 'k2.key']) symlinkSync(join('..data', f), join(mount, f));
    const registry = new FileRegistry(join(mount, 'devices.yaml'), silentLogger(), true);
    try {
      expect(registry.get('k1')?.psk?.key).toEqual(Buffer.from([1, 1]));
      expect(registry.get('k2')?.psk?.key).toEqual(Buffer.from('two'));
      const changed = new Promise<RegistryChange>((resolve) => registry.onChange(resolve));
      // kubelet writes the new version, points ..data_tmp at it and renames it over ..data.
      version('..2026_02', { 'devices.yaml': devicesFile, 'k1.key': 'hex:0101', 'k2.key': 'text:TWO' });
      symlinkSync('..2026_02', join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
      expect((await changed).removed).toEqual(['k2']);
      expect(registry.get('k2')?.psk?.key).toEqual(Buffer.from('TWO'));
      expect(registry.get('k1')?.psk?.key).toEqual(Buffer.from([1, 1]));
    } finally {
      registry.close();
    }
  });

  it('watches the folders of key files too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-keys-'));
    mkdirSync(join(dir, 'keys'));
    writeFileSync(join(dir, 'keys', 'm1'), 'base64:AQID');
    writeFileSync(
      join(dir, 'devices.yaml'),
      stringify([{ id: 'm1', psk: { identity: 'm1', keyFile: 'keys/m1' } }]),
    );
    const registry = new FileRegistry(join(dir, 'devices.yaml'), silentLogger(), true);
    try {
      expect(registry.get('m1')?.psk?.key).toEqual(Buffer.from([1, 2, 3]));
      const changed = new Promise<RegistryChange>((resolve) => registry.onChange(resolve));
      writeFileSync(join(dir, 'keys', 'm1'), 'base64:BAUG');
      expect((await changed).removed).toEqual(['m1']);
      expect(registry.get('m1')?.psk?.key).toEqual(Buffer.from([4, 5, 6]));
      // A missing key file is an error naming the entry; the devices loaded before stay.
      writeFileSync(
        join(dir, 'devices.yaml'),
        stringify([{ id: 'm1', psk: { identity: 'm1', keyFile: 'keys/none' } }]),
      );
      await registry.reload();
      expect(registry.reloadCounts.rejected).toBeGreaterThan(0);
      expect(registry.get('m1')?.psk?.key).toEqual(Buffer.from([4, 5, 6]));
    } finally {
      registry.close();
    }
  });

  it('keeps the DTLS sessions of the devices that stay and ends those of removed devices or changed keys', async () => {
    const psk = (id: string, key: string) => ({ id, psk: { identity: id, key: `text:${key}` } });
    gw = await startTestGateway({
      devices: [psk('s1', 'key-one'), psk('s2', 'key-two'), psk('s3', 'key-three')],
      config: { devices: { watch: true } },
    });
    const file = join(gw.dir, 'devices.yaml');
    const clients = await Promise.all(
      ['s1', 's2', 's3'].map((id) =>
        connectDtls('127.0.0.1', gw!.ports.dtls as number, {
          identity: id,
          key: Buffer.from({ s1: 'key-one', s2: 'key-two', s3: 'key-three' }[id] as string),
          cid: Buffer.from([1, 2, 3]),
        }),
      ),
    );
    try {
      const [c1, c2, c3] = clients;
      for (const c of clients) expect(await coapOverDtls(c)).toBe(Code.CHANGED);
      // s2 removed, s3 gets a new key, s1 unchanged (and a new device joins).
      const change = nextChange(gw);
      writeFileSync(
        file,
        stringify([psk('s1', 'key-one'), psk('s3', 'key-three-rotated'), psk('s4', 'key-four')]),
      );
      expect((await change).removed.slice().sort()).toEqual(['s2', 's3']);
      await until(() => c2.core.phase === 'closed' && c3.core.phase === 'closed');
      expect(c2.core.alerts).toContain(0); // close_notify
      // s1 goes on in the session it had: no new handshake.
      expect(await coapOverDtls(c1)).toBe(Code.CHANGED);
      expect(c1.core.handshakes).toBe(1);
      const sessions = await scrape(gw);
      expect(sessions).toMatch(/^cellgate_dtls_sessions_active 1$/m);
    } finally {
      for (const c of clients) c.close(false);
    }
  });

  it('reloads on SIGHUP in the real process and keeps serving', async () => {
    child = await startChildGateway({
      devices: [{ id: 'h1' }],
      config: { publisher: { type: 'null' }, log: { level: 'info' } },
    });
    expect(await uplink(child.coapPort, 'h2')).toBe(Code.UNAUTHORIZED);
    writeFileSync(join(child.dir, 'devices.yaml'), stringify([{ id: 'h1' }, { id: 'h2' }]));
    child.proc.kill('SIGHUP');
    const line = await child.waitForLog((l) => l.msg === 'device registry reloaded');
    expect(line).toMatchObject({ devices: 2, added: 1, addedIds: ['h2'], removed: 0 });
    expect(await uplink(child.coapPort, 'h2')).toBe(Code.CHANGED);
    expect(await uplink(child.coapPort, 'h1')).toBe(Code.CHANGED);
    writeFileSync(join(child.dir, 'devices.yaml'), '- id: [broken\n');
    child.proc.kill('SIGHUP');
    await child.waitForLog((l) => l.msg.startsWith('device file rejected'));
    // Every problem of the file in one line of the log, each entry named by position and id.
    writeFileSync(
      join(child.dir, 'devices.yaml'),
      stringify([{ id: 'h1' }, { id: 'h1' }, { id: 'h3', ip: 'x' }]),
    );
    child.proc.kill('SIGHUP');
    const rejected = await child.waitForLog(
      (l) => l.msg.startsWith('device file rejected') && String(l.problems).includes('h3'),
    );
    expect((rejected.problems as string[]).map((p) => p.replace(/^device file [^:]+: /, ''))).toEqual([
      'device #2 (id "h1"): id: "h1" is already the id of device #1 (id "h1"); ids must be unique',
      'device #3 (id "h3"): ip: not an IP address',
    ]);
    expect(await uplink(child.coapPort, 'h2')).toBe(Code.CHANGED);
    expect(child.proc.exitCode).toBe(null);
  });
});
