import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toDevice } from '../../src/devices/device.js';
import { FileRegistry } from '../../src/devices/file-registry.js';
import { indexDevices, MemoryRegistry } from '../../src/devices/memory-registry.js';
import { silentLogger } from '../../src/ops/logger.js';

const dev = (id: string, extra: Record<string, unknown> = {}) => toDevice({ id, ...extra } as never);

describe('device registry', () => {
  it('rejects duplicate ids, PSK identities and IPs', () => {
    expect(() => indexDevices([dev('a'), dev('a')])).toThrow(/"a" is listed twice/);
    const psk = { identity: 'x', key: Buffer.from('k') };
    expect(() => indexDevices([dev('a', { psk }), dev('b', { psk })])).toThrow(/PSK identity "x"/);
    expect(() => indexDevices([dev('a', { ip: '10.0.0.1' }), dev('b', { ip: '10.0.0.1' })])).toThrow(
      /IP 10\.0\.0\.1/,
    );
  });

  it('tells listeners which devices went away or changed keys', () => {
    const r = new MemoryRegistry([
      dev('a', { psk: { identity: 'a', key: Buffer.from('1') } }),
      dev('b', { psk: { identity: 'b', key: Buffer.from('1') } }),
      dev('c'),
    ]);
    const seen: string[][] = [];
    r.onChange((c) => seen.push([...c.removed]));
    r.replace([
      dev('a', { psk: { identity: 'a', key: Buffer.from('1') } }),
      dev('b', { psk: { identity: 'b', key: Buffer.from('2') } }),
    ]);
    expect(seen).toEqual([['b', 'c']]);
  });

  it('reloads the file and keeps the old devices when the new file is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-reg-'));
    const p = join(dir, 'devices.yaml');
    writeFileSync(p, '- id: a\n');
    const r = new FileRegistry(p, silentLogger(), false);
    expect(r.get('a')).toBeDefined();
    writeFileSync(p, '- id: a\n- id: b\n');
    await r.reload();
    expect(r.size).toBe(2);
    writeFileSync(p, '- id: [broken\n');
    await r.reload();
    expect(r.size).toBe(2);
    r.close();
  });

  it('notices a changed file when watching', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-reg-'));
    const p = join(dir, 'devices.yaml');
    writeFileSync(p, '- id: a\n');
    const r = new FileRegistry(p, silentLogger(), true);
    const changed = new Promise((resolve) => r.onChange(resolve));
    writeFileSync(p, '- id: a\n- id: z\n');
    await changed;
    expect(r.get('z')).toBeDefined();
    r.close();
  });
});
