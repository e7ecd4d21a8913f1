/**
 * Certificates and raw public keys with real, independent DTLS clients against the UDP listener: OpenSSL's
 * s_client with an ECDSA client certificate (CCM_8 and GCM), GnuTLS's gnutls-cli with X.509 and with raw
 * public keys (RFC 7250), and the failures a gateway must refuse: unknown CA, expired, unmapped, a
 * CertificateVerify made with another key, a raw public key nobody provisioned. libcoap's clients are tested
 * through the whole gateway (test/gateway/dtls-certificates.test.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../src/devices/device.js';
import { TestPki, type Identity, type RawKey } from '../support/certificates.js';
import { startListener, type ListenerHarness } from '../support/dtls-harness.js';
import { run } from '../support/processes.js';

let pki: TestPki;
let srv: ListenerHarness;
let dev1: Identity;
let dev2: Identity;
let rpk: RawKey;

function certDevice(id: string, x509: Device['x509']): Device {
  return { id, thing: `thing-${id}`, ips: [], x509 };
}

beforeAll(async () => {
  pki = new TestPki();
  const server = pki.server();
  dev1 = pki.device('dev1');
  dev2 = pki.device('dev2', 'dev2', { issuer: 'ca' });
  rpk = pki.rawKey('rpk1');
  srv = await startListener(
    {
      certificate: { certFile: server.certFile, keyFile: server.keyFile },
      trustAnchors: pki.caFile,
      clientIdentity: 'fingerprint',
    },
    [
      certDevice('dev1', { fingerprint: dev1.fingerprint }),
      certDevice('dev2', { fingerprint: dev2.fingerprint }),
      { id: 'rpk1', thing: 'rpk1', ips: [], rpk: { fingerprint: rpk.fingerprint } },
    ],
  );
});
afterAll(async () => {
  await srv?.close();
  pki?.close();
});

/** s_client arguments: a device certificate with its chain, verifying the gateway against the root. */
function sClientArgs(id: Identity, cipher: string): string[] {
  return [
    's_client',
    '-dtls1_2',
    '-cert',
    id.certFile,
    '-cert_chain',
    id.certFile,
    '-key',
    id.keyFile,
    '-CAfile',
    pki.caFile,
    '-verify_return_error',
    '-cipher',
    cipher,
    '-quiet',
    '-connect',
    `127.0.0.1:${srv.port}`,
  ];
}

function sClient(id: Identity, cipher: string, line: string) {
  return run('openssl', sClientArgs(id, cipher), { input: line, until: line, timeoutMs: 8000 });
}

describe('openssl s_client -dtls1_2 with an ECDSA client certificate', () => {
  for (const cipher of ['ECDHE-ECDSA-AES128-CCM8', 'ECDHE-ECDSA-AES128-GCM-SHA256']) {
    it(`completes a handshake with ${cipher}, verifies the gateway and is mapped by fingerprint`, async () => {
      const line = `certificate over ${cipher}\n`;
      const r = await sClient(dev1, cipher, line);
      expect(r.stdout).toContain(line);
      const d = srv.delivered.find((x) => x.data.toString() === line);
      expect(d?.peer.deviceId).toBe('dev1');
      expect(d?.peer.credential).toBe('x509');
      expect(d?.peer.fingerprint).toBe(dev1.fingerprint);
      expect(d?.peer.pskIdentity).toBeUndefined();
    });
  }
});

const GNUTLS_ECDSA =
  'NONE:+VERS-DTLS1.2:+ECDHE-ECDSA:+AES-128-CCM-8:+AES-128-GCM:+AEAD:+COMP-NULL:+SIGN-ALL:+CURVE-ALL';

describe('gnutls-cli', () => {
  it('completes a handshake with an X.509 client certificate (CCM_8)', async () => {
    const line = 'gnutls x509\n';
    const r = await run(
      'gnutls-cli',
      [
        '-u',
        '--x509certfile',
        dev2.certFile,
        '--x509keyfile',
        dev2.keyFile,
        '--x509cafile',
        pki.caFile,
        '--priority',
        GNUTLS_ECDSA,
        '-p',
        String(srv.port),
        '127.0.0.1',
      ],
      { input: line, until: line, timeoutMs: 8000 },
    );
    expect(r.stdout).toContain(line);
    const d = srv.delivered.find((x) => x.data.toString() === line);
    expect(d?.peer.deviceId).toBe('dev2');
    expect(d?.peer.credential).toBe('x509');
  });

  it('completes a handshake with raw public keys on both sides (RFC 7250)', async () => {
    const line = 'gnutls rpk\n';
    const r = await run(
      'gnutls-cli',
      [
        '-u',
        '--rawpkkeyfile',
        rpk.keyFile,
        '--rawpkfile',
        rpk.publicKeyFile,
        '--insecure',
        '--priority',
        `${GNUTLS_ECDSA}:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK`,
        '-p',
        String(srv.port),
        '127.0.0.1',
      ],
      { input: line, until: line, timeoutMs: 8000 },
    );
    expect(r.stdout + r.stderr).toContain('(DTLS1.2-Raw Public Key)-(ECDHE-SECP256R1)-(ECDSA-SHA256)');
    expect(r.stdout).toContain(line);
    const d = srv.delivered.find((x) => x.data.toString() === line);
    expect(d?.peer.deviceId).toBe('rpk1');
    expect(d?.peer.credential).toBe('rpk');
    expect(d?.peer.fingerprint).toBe(rpk.fingerprint);
  });
});

describe('a device certificate signed by an RSA CA (as AWS IoT Core signs them)', () => {
  it('is accepted with an ECDHE-ECDSA suite: the device key is P-256, the chain signature RSA', async () => {
    const rsaCa = pki.rsaCa();
    const device = pki.device('rsa-signed', 'rsa-signed', { issuer: 'rsa-ca' });
    const server = pki.server('server-rsa');
    const bundle = pki.path('anchors.pem');
    writeFileSync(bundle, readFileSync(pki.caFile, 'utf8') + readFileSync(rsaCa, 'utf8'));
    const other = await startListener(
      {
        certificate: { certFile: server.certFile, keyFile: server.keyFile },
        trustAnchors: bundle,
        clientIdentity: 'cn',
      },
      [{ id: 'rsa-signed', thing: 'rsa-signed', ips: [] }],
    );
    try {
      const line = 'signed by RSA\n';
      const r = await run(
        'openssl',
        sClientArgs(device, 'ECDHE-ECDSA-AES128-CCM8').map((a) =>
          a === `127.0.0.1:${srv.port}` ? `127.0.0.1:${other.port}` : a,
        ),
        { input: line, until: line, timeoutMs: 8000 },
      );
      expect(r.stdout).toContain(line);
      expect(other.delivered[0]?.peer).toMatchObject({ deviceId: 'rsa-signed', credential: 'x509' });
    } finally {
      await other.close();
    }
  });
});

describe('refused credentials end the handshake with the right alert and deliver nothing', () => {
  async function refused(id: Identity, alert: RegExp, reason: string): Promise<void> {
    const before = srv.delivered.length;
    const failed = await srv.metric('cellgate_dtls_handshakes_failed_total', { reason });
    const r = await run('openssl', sClientArgs(id, 'ECDHE-ECDSA-AES128-CCM8'), {
      input: 'must not arrive\n',
      timeoutMs: 5000,
    });
    expect(r.stderr).toMatch(alert);
    expect(srv.delivered.length).toBe(before);
    expect(await srv.metric('cellgate_dtls_handshakes_failed_total', { reason })).toBe(failed + 1);
  }

  it('a certificate from an unknown CA: unknown_ca', async () => {
    pki.rogueCa();
    await refused(pki.device('rogue-dev', 'dev1', { issuer: 'rogue' }), /alert unknown ca/, 'unknown_ca');
  });

  it('an expired certificate: certificate_expired', async () => {
    const expired = pki.device('expired', 'dev1', { days: 0, keyOf: 'dev1' });
    // Its notAfter is the second it was made: a second later it has expired.
    await new Promise((r) => setTimeout(r, 1100));
    await refused(expired, /alert certificate expired/, 'certificate_expired');
  });

  it('a valid certificate no device is provisioned with: access_denied', async () => {
    await refused(pki.device('stranger'), /alert access denied/, 'unmapped');
  });

  it('a raw public key no device is provisioned with: certificate_unknown', async () => {
    const other = pki.rawKey('not-provisioned');
    const before = srv.delivered.length;
    const r = await run(
      'gnutls-cli',
      [
        '-u',
        '--rawpkkeyfile',
        other.keyFile,
        '--rawpkfile',
        other.publicKeyFile,
        '--insecure',
        '--priority',
        `${GNUTLS_ECDSA}:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK`,
        '-p',
        String(srv.port),
        '127.0.0.1',
      ],
      { input: 'must not arrive\n', timeoutMs: 5000 },
    );
    expect(r.stdout + r.stderr).toContain('Received alert [46]: Unknown certificate');
    expect(srv.delivered.length).toBe(before);
    expect(await srv.metric('cellgate_dtls_handshakes_failed_total', { reason: 'unknown_key' })).toBe(1);
  });
});
