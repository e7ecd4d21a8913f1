/**
 * ECDHE-ECDSA with X.509 certificates and raw public keys, and ECDHE-PSK, in-process with the project's
 * client: the mapping rules of dtls.clientIdentity, a CertificateVerify made with another key, fragmented
 * flights under a small path MTU with losses, and what an established certificate session keeps.
 */
import { createPrivateKey, KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DtlsConfig } from '../../src/config/dtls.js';
import type { Device } from '../../src/devices/device.js';
import type { ClientCertificate } from '../../src/dtls/client.js';
import { AlertDescription } from '../../src/dtls/protocol/constants.js';
import { pemCertificates } from '../../src/dtls/certificates/peer-verifier.js';
import { readRecord, RecordHeader } from '../../src/dtls/protocol/record.js';
import { TestPki, type Identity, type RawKey } from '../support/certificates.js';
import { device, DtlsHarness, until } from '../support/dtls-harness.js';

const ECDSA_CCM_8 = 0xc0ae;
const ECDSA_GCM = 0xc02b;
const ECDHE_PSK_CCM_8 = 0xd003;

let pki: TestPki;
let server: Identity;
let dev1: Identity;
let rpk: RawKey;
let h: DtlsHarness;

beforeAll(() => {
  pki = new TestPki();
  server = pki.server();
  dev1 = pki.device('dev1', 'meter-17');
  rpk = pki.rawKey('rpk1');
});
afterAll(() => pki.close());
afterEach(async () => {
  await h?.close();
});

function harness(devices: Device[], config: Partial<DtlsConfig> = {}): DtlsHarness {
  h = new DtlsHarness(
    {
      certificate: { certFile: server.certFile, keyFile: server.keyFile },
      trustAnchors: pki.caFile,
      ...config,
    },
    devices,
  );
  return h;
}

function x509(id: Identity, signWith?: KeyObject): ClientCertificate {
  return { key: createPrivateKey(id.key), chain: pemCertificates(id.cert), signWith };
}

function rawKey(k: RawKey): ClientCertificate {
  return { key: createPrivateKey(readFileSync(k.keyFile)) };
}

async function echo(c: ReturnType<DtlsHarness['client']>, text: string): Promise<void> {
  const before = c.received.length;
  c.write(Buffer.from(text));
  await until(() => c.received.length > before, 2000, 'echo');
  expect(c.received.at(-1)?.toString()).toBe(text);
}

describe('ECDHE-ECDSA with an X.509 client certificate', () => {
  for (const [name, suite] of [
    ['CCM_8', ECDSA_CCM_8],
    ['GCM', ECDSA_GCM],
  ] as const) {
    it(`completes with ${name}, maps the device by fingerprint and keeps no certificate in the session`, async () => {
      harness([{ id: 'dev1', thing: 'dev1', ips: [], x509: { fingerprint: dev1.fingerprint } }]);
      const c = h.client({ cipherSuites: [suite], certificate: x509(dev1) });
      await c.handshake();
      await echo(c, 'hello');
      const peer = h.delivered[0].peer;
      expect(peer).toMatchObject({ deviceId: 'dev1', credential: 'x509', fingerprint: dev1.fingerprint });
      expect(peer.pskIdentity).toBeUndefined();
      // What stays: keys (in the key store), identity, credential kind, fingerprint. No certificate or key object.
      for (const v of Object.values(peer))
        expect(v instanceof X509Certificate || v instanceof KeyObject || Buffer.isBuffer(v)).toBe(false);
      expect((peer as unknown as { hs: unknown }).hs).toBeNull();
    });
  }

  it('refuses a CertificateVerify signed with another key: decrypt_error, bad_signature, nothing delivered', async () => {
    harness([{ id: 'dev1', thing: 'dev1', ips: [], x509: { fingerprint: dev1.fingerprint } }]);
    const other = createPrivateKey(readFileSync(pki.rawKey('other').keyFile));
    const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: x509(dev1, other) });
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.decryptError}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_signature' })).toBe(1);
    expect(h.server.sessionCount).toBe(0);
    expect(h.delivered).toHaveLength(0);
  });

  it('is not offered without dtls.certificate: a client offering only ECDHE-ECDSA gets handshake_failure', async () => {
    h = new DtlsHarness({}, [device('dev1')]);
    const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: x509(dev1) });
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.handshakeFailure}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'no_common_suite' })).toBe(1);
  });
});

describe('dtls.clientIdentity maps a certificate to its device', () => {
  const cases: [DtlsConfig['clientIdentity'], Device, boolean][] = [
    ['cn', { id: 'dev1', thing: 't1', ips: [], x509: { subject: 'meter-17' } }, true],
    ['cn', { id: 'meter-17', thing: 't1', ips: [] }, true],
    ['cn', { id: 'dev1', thing: 'meter-17', ips: [] }, true],
    ['cn', { id: 'dev1', thing: 't1', ips: [] }, false],
    ['san-uri', { id: 'urn:dev:meter-17', thing: 't1', ips: [] }, true],
    ['san-uri', { id: 'meter-17', thing: 't1', ips: [] }, false],
    ['san-dns', { id: 'dev1', thing: 'meter-17.devices.test', ips: [] }, true],
    ['fingerprint', { id: 'meter-17', thing: 'meter-17', ips: [] }, false],
    // A device that pins another certificate is not reached by this one, whatever the rule.
    ['cn', { id: 'meter-17', thing: 't1', ips: [], x509: { fingerprint: 'ab'.repeat(32) } }, false],
  ];
  for (const [rule, d, maps] of cases) {
    it(`${rule}: ${JSON.stringify({ id: d.id, thing: d.thing, x509: d.x509 })} ${maps ? 'maps' : 'does not map'}`, async () => {
      harness([d], { clientIdentity: rule });
      const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: x509(dev1) });
      if (maps) {
        await c.handshake();
        await echo(c, 'mapped');
        expect(h.delivered[0].peer.deviceId).toBe(d.id);
      } else {
        await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.accessDenied}`);
        expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'unmapped' })).toBe(1);
      }
    });
  }
});

describe('raw public keys (RFC 7250)', () => {
  it('maps the key by fingerprint and answers with the server’s raw public key', async () => {
    harness([{ id: 'rpk1', thing: 'rpk1', ips: [], rpk: { fingerprint: rpk.fingerprint } }], {
      trustAnchors: undefined,
    });
    const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: rawKey(rpk) });
    await c.handshake();
    await echo(c, 'raw');
    expect(h.delivered[0].peer).toMatchObject({
      deviceId: 'rpk1',
      credential: 'rpk',
      fingerprint: rpk.fingerprint,
    });
  });

  it('refuses a key nobody provisioned: certificate_unknown, unknown_key', async () => {
    harness([{ id: 'rpk1', thing: 'rpk1', ips: [], rpk: { fingerprint: rpk.fingerprint } }]);
    const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: rawKey(pki.rawKey('stranger-key')) });
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.certificateUnknown}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'unknown_key' })).toBe(1);
  });
});

describe('fragmented flights', () => {
  it('splits the server flight by the path MTU and completes through losses of its datagrams', async () => {
    harness([{ id: 'dev1', thing: 'dev1', ips: [], x509: { fingerprint: dev1.fingerprint } }], {
      pathMtu: 300,
    });
    const datagrams: Buffer[] = [];
    let dropped = 0;
    h.drop = (dir, d) => {
      if (dir !== 'to-client') return false;
      datagrams.push(d);
      // Lose the second datagram of flight 4 the first time it is sent.
      if (datagrams.length === 3 && dropped === 0) {
        dropped++;
        return true;
      }
      return false;
    };
    const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: x509(dev1), retransmitMs: 50 });
    await c.handshake();
    await echo(c, 'after loss');
    expect(dropped).toBe(1);
    expect(await h.metric('cellgate_dtls_flights_retransmitted_total')).toBeGreaterThanOrEqual(1);
    const rec = new RecordHeader();
    for (const d of datagrams) expect(d.length).toBeLessThanOrEqual(300 - 28);
    // Flight 4 took several datagrams, with handshake fragments (fragment_length < length).
    let fragments = 0;
    for (const d of datagrams.slice(1, 4))
      for (let off = 0; off < d.length;) {
        off = readRecord(d, off, 0, rec);
        if (off < 0) break;
        const b = d.subarray(rec.bodyOffset);
        if (rec.type === 22 && b.readUIntBE(9, 3) < b.readUIntBE(1, 3)) fragments++;
      }
    expect(fragments).toBeGreaterThanOrEqual(2);
  });

  it('honours the client’s record_size_limit', async () => {
    harness([{ id: 'dev1', thing: 'dev1', ips: [], x509: { fingerprint: dev1.fingerprint } }]);
    const c = h.client({ cipherSuites: [ECDSA_CCM_8], certificate: x509(dev1), recordSizeLimit: 128 });
    await c.handshake();
    const rec = new RecordHeader();
    for (const { datagram } of h.sent)
      for (let off = 0; off < datagram.length;) {
        off = readRecord(datagram, off, 0, rec);
        if (off < 0) break;
        if (rec.epoch === 0) expect(rec.bodyLength).toBeLessThanOrEqual(128);
      }
  });
});

describe('ECDHE-PSK (RFC 5489, TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256)', () => {
  it('completes with the device’s PSK and fails a wrong key with decrypt_error', async () => {
    h = new DtlsHarness({}, [device('dev1')]);
    const c = h.client({ cipherSuites: [ECDHE_PSK_CCM_8] });
    await c.handshake();
    expect(c.suite?.id).toBe(ECDHE_PSK_CCM_8);
    await echo(c, 'forward secret');
    expect(h.delivered[0].peer).toMatchObject({
      deviceId: 'dev1',
      credential: 'psk',
      pskIdentity: 'id-dev1',
    });
    const bad = h.client({ cipherSuites: [ECDHE_PSK_CCM_8], key: Buffer.from('wrong') });
    await expect(bad.handshake()).rejects.toThrow(`alert ${AlertDescription.decryptError}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_key' })).toBe(1);
  });

  it('is refused when the client supports no curve the server uses', async () => {
    h = new DtlsHarness({ cipherSuites: ['TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256'] }, [device('dev1')]);
    const c = h.client({ cipherSuites: [ECDHE_PSK_CCM_8] });
    // Rewrite supported_groups to secp384r1 (24) only.
    const send = (c as unknown as { send: (d: Buffer) => void }).send;
    (c as unknown as { send: (d: Buffer) => void }).send = (d: Buffer) => {
      const at = d.indexOf(Buffer.from([0, 10, 0, 4, 0, 2, 0, 23]));
      if (at >= 0) d[at + 7] = 24;
      send(d);
    };
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.handshakeFailure}`);
  });
});
