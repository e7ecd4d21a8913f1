/**
 * Certificate and raw-public-key entries of the device file: `x509: { fingerprint | subject }` and
 * `rpk: { publicKey | fingerprint }`, normalised to lower-case hex fingerprints, indexed for the DTLS
 * handshake, refused when malformed or claimed twice, and a changed credential ends the device's sessions.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DeviceFileError, readDeviceSource } from '../../src/devices/file-registry.js';
import { deviceEntrySchema, toDevice } from '../../src/devices/device.js';
import { indexDevices, MemoryRegistry } from '../../src/devices/memory-registry.js';

const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const spki = publicKey.export({ format: 'der', type: 'spki' });
const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
const keyFingerprint = createHash('sha256').update(spki).digest('hex');
const FP = 'ab'.repeat(32);

function entry(e: Record<string, unknown>) {
  return deviceEntrySchema.safeParse({ id: 'd', ...e });
}

describe('device file: x509 and rpk', () => {
  it('accepts a fingerprint with colons and capitals and stores it as lower-case hex', () => {
    const r = entry({ x509: { fingerprint: FP.toUpperCase().match(/../g)!.join(':') } });
    expect(r.success && toDevice(r.data).x509).toEqual({ fingerprint: FP, subject: undefined });
  });

  it('accepts a subject CN, and both pins together', () => {
    const r = entry({ x509: { subject: 'meter-17', fingerprint: FP } });
    expect(r.success && toDevice(r.data).x509).toEqual({ fingerprint: FP, subject: 'meter-17' });
  });

  it('turns a raw public key (base64 DER or PEM) into its SPKI fingerprint', () => {
    for (const publicKey of [spki.toString('base64'), pem]) {
      const r = entry({ rpk: { publicKey } });
      expect(r.success && toDevice(r.data).rpk).toEqual({ fingerprint: keyFingerprint });
    }
    const r = entry({ rpk: { fingerprint: keyFingerprint } });
    expect(r.success && toDevice(r.data).rpk).toEqual({ fingerprint: keyFingerprint });
  });

  it('refuses malformed entries with a message saying what is wrong', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      format: 'pem',
      type: 'spki',
    });
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ x509: {} }, /give fingerprint or subject/],
      [{ x509: { fingerprint: 'abc' } }, /64 hex digits/],
      [{ rpk: { publicKey: 'bm90IGEga2V5' } }, /SubjectPublicKeyInfo or a PEM/],
      [{ rpk: { publicKey: rsa.toString() } }, /P-256/],
      [{ rpk: { publicKey: pem, fingerprint: keyFingerprint } }, /exactly one/],
      [{ x509: { fingerprint: FP, serial: 1 } }, /serial/],
    ];
    for (const [e, message] of bad) {
      const r = entry(e);
      expect(r.success).toBe(false);
      expect(JSON.stringify(r.error?.issues)).toMatch(message);
    }
  });

  it('refuses a fingerprint, subject or key claimed by two devices', () => {
    const dev = (id: string, e: Record<string, unknown>) => toDevice(deviceEntrySchema.parse({ id, ...e }));
    expect(() =>
      indexDevices([dev('a', { x509: { fingerprint: FP } }), dev('b', { x509: { fingerprint: FP } })]),
    ).toThrow(/certificate fingerprint .* "a" and "b"/);
    expect(() =>
      indexDevices([dev('a', { x509: { subject: 's' } }), dev('b', { x509: { subject: 's' } })]),
    ).toThrow(/certificate subject "s"/);
    expect(() =>
      indexDevices([
        dev('a', { rpk: { publicKey: pem } }),
        dev('b', { rpk: { fingerprint: keyFingerprint } }),
      ]),
    ).toThrow(/raw public key/);
  });

  it('a device file naming a certificate or key twice is refused, one line per problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-certs-'));
    const file = join(dir, 'devices.yaml');
    writeFileSync(
      file,
      stringify([
        { id: 'a', x509: { fingerprint: FP, subject: 'cn-a' } },
        { id: 'b', x509: { fingerprint: FP.toUpperCase() } },
        { id: 'c', x509: { subject: 'cn-a' } },
        { id: 'd', rpk: { publicKey: pem } },
        { id: 'e', rpk: { fingerprint: keyFingerprint } },
      ]),
    );
    try {
      expect(() => readDeviceSource(file)).toThrow(DeviceFileError);
      const lines = (() => {
        try {
          readDeviceSource(file);
          return [];
        } catch (err) {
          return (err as DeviceFileError).message.split('\n');
        }
      })();
      expect(lines.join('\n')).toContain(
        `device #2 (id "b"): x509.fingerprint: "${FP}" is already the certificate fingerprint of device #1 (id "a")`,
      );
      expect(lines.join('\n')).toContain(
        `device #3 (id "c"): x509.subject: "cn-a" is already the certificate subject of device #1 (id "a")`,
      );
      expect(lines.join('\n')).toContain(
        `device #5 (id "e"): rpk.fingerprint: "${keyFingerprint}" is already the raw public key of device #4 (id "d")`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds devices by credential and by name (id first, then thing)', async () => {
    const r = new MemoryRegistry([
      toDevice(
        deviceEntrySchema.parse({ id: 'a', thing: 'shared', x509: { fingerprint: FP, subject: 'cn-a' } }),
      ),
      toDevice(deviceEntrySchema.parse({ id: 'shared', rpk: { publicKey: pem } })),
    ]);
    expect((await r.byCredential('x509-fingerprint', FP))?.id).toBe('a');
    expect((await r.byCredential('x509-subject', 'cn-a'))?.id).toBe('a');
    expect((await r.byCredential('rpk-fingerprint', keyFingerprint))?.id).toBe('shared');
    expect((await r.byCredential('name', 'shared'))?.id).toBe('shared');
    expect((await r.byCredential('name', 'a'))?.id).toBe('a');
    expect(await r.byCredential('name', 'nobody')).toBeUndefined();
  });

  it('reports a device whose certificate pin or raw public key changed, so its sessions end', () => {
    const dev = (e: Record<string, unknown>) => toDevice(deviceEntrySchema.parse({ id: 'a', ...e }));
    const r = new MemoryRegistry([dev({ x509: { fingerprint: FP } })]);
    const seen: string[][] = [];
    r.onChange((c) => seen.push([...c.removed]));
    r.replace([dev({ x509: { fingerprint: FP } })]);
    r.replace([dev({ x509: { fingerprint: 'cd'.repeat(32) } })]);
    r.replace([dev({ rpk: { publicKey: pem } })]);
    expect(seen).toEqual([[], ['a'], ['a']]);
  });
});
