/**
 * Client certificate chains against the trust anchors: issuer signatures, validity, CA and key usage of the
 * issuers, digital signature and clientAuth of the device certificate, the depth limit, certificates sent in
 * any order; the cache of verified chains (hit, expiry, cap). And the gateway's own credential files: read at
 * start, reloaded when replaced, a broken replacement keeps the loaded one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dtlsSchema } from '../../src/config/dtls.js';
import { DtlsCredentials } from '../../src/dtls/certificates/credentials.js';
import {
  pemCertificates,
  PeerVerifier,
  readTrustAnchors,
  verifyRawPublicKey,
} from '../../src/dtls/certificates/peer-verifier.js';
import { silentLogger } from '../../src/ops/logger.js';
import { CA_EXT, CLIENT_EXT, TestPki } from '../support/certificates.js';
import { until } from '../support/dtls-harness.js';

let pki: TestPki;
beforeAll(() => {
  pki = new TestPki();
});
afterAll(() => pki.close());

function verifier(maxIntermediates = 3, cache = 100, onCap = () => {}): PeerVerifier {
  return new PeerVerifier(readTrustAnchors(readFileSync(pki.caFile, 'utf8')), maxIntermediates, cache, onCap);
}

const chainOf = (pem: string) => pemCertificates(pem);

describe('chain verification', () => {
  it('accepts a device certificate from the intermediate with its chain, in either order, and reads its names', () => {
    const d = pki.device('v-dev', 'meter-9');
    const [leaf, intermediate] = chainOf(d.cert);
    const root = chainOf(readFileSync(pki.caFile, 'utf8'))[0];
    // In order, with a repeat, with the root and out of order: all lead to the anchor.
    for (const chain of [
      [leaf, intermediate],
      [leaf, intermediate, leaf],
      [leaf, root, intermediate],
    ])
      expect(verifier().verifyChain(chain, Date.now())).toMatchObject({ fingerprint: d.fingerprint });
    const r = verifier().verifyChain([leaf, intermediate], Date.now());
    expect(r).toMatchObject({
      kind: 'x509',
      fingerprint: d.fingerprint,
      cn: 'meter-9',
      sanUris: ['urn:dev:meter-9'],
      sanDns: ['meter-9.devices.test'],
    });
  });

  it('refuses a chain missing its intermediate, a foreign CA and a non-CA issuer as unknown_ca', () => {
    const d = pki.device('v-lonely');
    expect(verifier().verifyChain([chainOf(d.cert)[0]], Date.now())).toBe('unknown_ca');
    pki.rogueCa('v-rogue');
    expect(
      verifier().verifyChain(chainOf(pki.device('v-r', 'x', { issuer: 'v-rogue' }).cert), Date.now()),
    ).toBe('unknown_ca');
    // An end-entity certificate used to sign another.
    pki.identity('v-notca', '/CN=not a ca', 'ca', CLIENT_EXT);
    const child = pki.identity('v-child', '/CN=child', 'v-notca', CLIENT_EXT);
    const notCa = chainOf(readFileSync(pki.path('v-notca.pem'), 'utf8'))[0];
    expect(verifier().verifyChain([chainOf(child.cert)[0], notCa], Date.now())).toBe('unknown_ca');
  });

  it('limits the number of intermediates (dtls.maxChainDepth)', () => {
    pki.identity('v-i2', '/CN=second intermediate', 'intermediate', CA_EXT);
    const leaf = chainOf(pki.identity('v-deep', '/CN=deep', 'v-i2', CLIENT_EXT).cert)[0];
    const i2 = chainOf(readFileSync(pki.path('v-i2.pem'), 'utf8'))[0];
    const i1 = chainOf(readFileSync(pki.path('intermediate.pem'), 'utf8'))[0];
    expect(typeof verifier(2).verifyChain([leaf, i2, i1], Date.now())).toBe('object');
    expect(verifier(1).verifyChain([leaf, i2, i1], Date.now())).toBe('unknown_ca');
  });

  it('refuses an expired certificate and one not valid yet as certificate_expired', () => {
    const d = pki.device('v-exp');
    const later = Date.now() + 3 * 86_400_000;
    expect(verifier().verifyChain(chainOf(d.cert), later)).toBe('certificate_expired');
    expect(verifier().verifyChain(chainOf(d.cert), Date.now() - 86_400_000)).toBe('certificate_expired');
  });

  it('refuses a device certificate without digitalSignature or for server authentication only', () => {
    const noSig = pki.identity('v-nosig', '/CN=nosig', 'ca', 'keyUsage=critical,keyEncipherment\n');
    const serverOnly = pki.identity(
      'v-srv',
      '/CN=srv',
      'ca',
      'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
    );
    expect(verifier().verifyChain(chainOf(noSig.cert), Date.now())).toBe('bad_certificate');
    expect(verifier().verifyChain(chainOf(serverOnly.cert), Date.now())).toBe('bad_certificate');
    expect(verifier().verifyChain([Buffer.from('not a certificate')], Date.now())).toBe('bad_certificate');
  });

  it('remembers verified chains until they expire, and makes room when the cache is full', () => {
    let caps = 0;
    const v = verifier(3, 2, () => caps++);
    const chains = ['v-c1', 'v-c2', 'v-c3'].map((n) => chainOf(pki.device(n).cert));
    for (const c of chains) v.verifyChain(c, Date.now());
    expect(v.cached).toBe(2);
    expect(caps).toBe(1);
    expect(v.verifyChain(chains[2], Date.now() + 3 * 86_400_000)).toBe('certificate_expired');
    expect(v.cached).toBe(1);
  });

  it('accepts a P-256 raw public key and refuses anything else', () => {
    const k = pki.rawKey('v-rpk');
    expect(verifyRawPublicKey(Buffer.from(k.publicKey, 'base64'))).toMatchObject({
      kind: 'rpk',
      fingerprint: k.fingerprint,
    });
    expect(verifyRawPublicKey(Buffer.from('junk'))).toBe('bad_certificate');
  });
});

describe('the gateway’s credential files', () => {
  it('are read at start, reloaded when replaced, and a broken replacement keeps the loaded ones', async () => {
    const a = pki.server('cred-a');
    const b = pki.server('cred-b');
    const certFile = pki.path('live.crt');
    const keyFile = pki.path('live.key');
    writeFileSync(certFile, a.cert);
    writeFileSync(keyFile, a.key);
    const config = dtlsSchema.parse({ certificate: { certFile, keyFile }, trustAnchors: pki.caFile });
    const creds = new DtlsCredentials(config, silentLogger(), () => {});
    try {
      const first = creds.server?.x509Body;
      expect(first?.includes(chainOf(a.cert)[0])).toBe(true);
      writeFileSync(certFile, b.cert);
      writeFileSync(keyFile, b.key);
      await until(() => creds.server?.x509Body !== first, 3000, 'reload');
      expect(creds.server?.x509Body.includes(chainOf(b.cert)[0])).toBe(true);
      const loaded = creds.server;
      writeFileSync(keyFile, a.key); // no longer the certificate's key
      await new Promise((r) => setTimeout(r, 600));
      expect(creds.server).toBe(loaded);
      expect(creds.reload()).toBe(false);
    } finally {
      creds.close();
    }
    expect(
      () =>
        new DtlsCredentials(
          dtlsSchema.parse({ certificate: { certFile: pki.path('nope.pem'), keyFile } }),
          silentLogger(),
          () => {},
          false,
        ),
    ).toThrow(/dtls.certificate.certFile: cannot read .*ENOENT/);
  });
});

describe('configuration', () => {
  it('refuses trust anchors without the gateway’s credential, and the AWS IoT mode without trust anchors', () => {
    const a = dtlsSchema.safeParse({ trustAnchors: 'ca.pem' });
    expect(a.success).toBe(false);
    expect(a.error?.issues[0]).toMatchObject({ path: ['trustAnchors'] });
    const b = dtlsSchema.safeParse({
      certificate: { certFile: 'a', keyFile: 'b' },
      awsIot: { enabled: true },
    });
    expect(b.success).toBe(false);
    expect(b.error?.issues[0]).toMatchObject({ path: ['awsIot', 'enabled'] });
  });

  it('fails the start naming the file when the certificate cannot be read, and frees the port', async () => {
    const { startTestGateway } = await import('../support/gateway.js');
    await expect(
      startTestGateway({
        config: { dtls: { certificate: { certFile: 'missing.pem', keyFile: 'missing.key' } } },
      }),
    ).rejects.toThrow(/dtls.certificate.certFile: cannot read .*missing.pem: ENOENT/);
  });
});
