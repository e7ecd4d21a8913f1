/**
 * AWS IoT Core certificate mode (dtls.awsIot) against a wire-compatible control-plane stand-in driven by the
 * real SDK client with SigV4: a device certificate is accepted while IoT Core says it is ACTIVE and attached
 * to the device's thing; revoked, inactive, detached, unregistered and unreachable each refuse the handshake
 * with their alert and reason; answers are cached for the TTL (a revocation takes effect when it runs out)
 * and bounded.
 */
import { createPrivateKey } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dtlsSchema } from '../../src/config/dtls.js';
import { awsIotCertificateStatus } from '../../src/dtls/certificates/aws-iot-status.js';
import { pemCertificates } from '../../src/dtls/certificates/peer-verifier.js';
import { AlertDescription } from '../../src/dtls/protocol/constants.js';
import { TestPki, type Identity } from '../support/certificates.js';
import { DtlsHarness, until } from '../support/dtls-harness.js';
import { IotControlPlaneServer } from '../support/iot-control-plane-server.js';
import { TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';

const ECDSA_CCM_8 = 0xc0ae;
let pki: TestPki;
let iot: IotControlPlaneServer;
let server: Identity;
let h: DtlsHarness | undefined;
let caps = 0;

beforeAll(async () => {
  pki = new TestPki();
  server = pki.server();
  iot = await IotControlPlaneServer.start();
});
afterAll(async () => {
  await iot?.close();
  pki?.close();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  iot.failWith = undefined;
});

/** A gateway in AWS IoT mode whose devices are mapped by CN (the thing name, as IoT fleets do). */
function gateway(ttlMs = 60_000, entries = 1000): DtlsHarness {
  const config = {
    certificate: { certFile: server.certFile, keyFile: server.keyFile },
    trustAnchors: pki.caFile,
    clientIdentity: 'cn' as const,
    awsIot: {
      enabled: true,
      region: iot.region,
      endpoint: iot.endpoint,
      cacheTtlMs: ttlMs,
      cacheEntries: entries,
      timeoutMs: 3000,
    },
  };
  const status = awsIotCertificateStatus(dtlsSchema.parse(config).awsIot, () => caps++, TEST_CREDENTIAL);
  h = new DtlsHarness(
    config,
    ['thing-a', 'thing-b', 'thing-c'].map((t) => ({ id: `dev-${t}`, thing: t, ips: [] })),
    undefined,
    status,
  );
  return h;
}

function connect(g: DtlsHarness, id: Identity) {
  return g.client({
    cipherSuites: [ECDSA_CCM_8],
    certificate: { key: createPrivateKey(id.key), chain: pemCertificates(id.cert) },
  });
}

describe('AWS IoT Core certificate mode', () => {
  it('accepts a certificate IoT Core has ACTIVE and attached to the thing (principals over several pages)', async () => {
    const id = pki.device('aws-a', 'thing-a');
    iot.register(id.fingerprint);
    iot.attach(id.fingerprint, 'thing-a', 3);
    const g = gateway();
    const c = connect(g, id);
    await c.handshake();
    c.write(Buffer.from('hello'));
    await until(() => g.delivered.length === 1, 2000, 'delivery');
    expect(g.delivered[0].peer).toMatchObject({
      deviceId: 'dev-thing-a',
      credential: 'x509',
      fingerprint: id.fingerprint,
    });
    expect(iot.calls.rejectedSignatures).toBe(0);
  });

  const refusals: [string, (fp: string) => void, number, string][] = [
    ['revoked', (fp) => iot.register(fp, 'REVOKED'), AlertDescription.certificateRevoked, 'revoked'],
    ['inactive', (fp) => iot.register(fp, 'INACTIVE'), AlertDescription.certificateRevoked, 'revoked'],
    ['not registered', () => {}, AlertDescription.certificateUnknown, 'not_registered'],
  ];
  for (const [what, arrange, alert, reason] of refusals) {
    it(`refuses a certificate IoT Core reports ${what}: alert ${alert}, reason ${reason}`, async () => {
      const id = pki.device(`aws-${reason}`, 'thing-b');
      arrange(id.fingerprint);
      iot.attach(id.fingerprint, 'thing-b');
      const g = gateway();
      await expect(connect(g, id).handshake()).rejects.toThrow(`alert ${alert}`);
      expect(await g.metric('cellgate_dtls_handshakes_failed_total', { reason })).toBe(1);
      expect(g.delivered).toHaveLength(0);
    });
  }

  it('refuses an ACTIVE certificate attached to another thing (or none): access_denied, not_attached', async () => {
    const id = pki.device('aws-elsewhere', 'thing-c');
    iot.register(id.fingerprint);
    iot.attach(id.fingerprint, 'some-other-thing');
    const g = gateway();
    await expect(connect(g, id).handshake()).rejects.toThrow(`alert ${AlertDescription.accessDenied}`);
    expect(await g.metric('cellgate_dtls_handshakes_failed_total', { reason: 'not_attached' })).toBe(1);
  });

  it('refuses when IoT Core cannot be asked (fails closed) and asks again next time', async () => {
    const id = pki.device('aws-down', 'thing-a');
    iot.register(id.fingerprint);
    iot.attach(id.fingerprint, 'thing-a');
    const g = gateway();
    iot.failWith = 500;
    await expect(connect(g, id).handshake()).rejects.toThrow(`alert ${AlertDescription.internalError}`);
    expect(await g.metric('cellgate_dtls_handshakes_failed_total', { reason: 'lookup_error' })).toBe(1);
    iot.failWith = undefined;
    await connect(g, id).handshake();
  });

  it('reuses answers for the TTL: a revocation locks the device out once the TTL has run out', async () => {
    const id = pki.device('aws-ttl', 'thing-a');
    iot.register(id.fingerprint);
    iot.attach(id.fingerprint, 'thing-a');
    const g = gateway(1000);
    const before = { ...iot.calls };
    await connect(g, id).handshake();
    await connect(g, id).handshake();
    expect(iot.calls.describeCertificate - before.describeCertificate).toBe(1);
    iot.setStatus(id.fingerprint, 'REVOKED');
    await connect(g, id).handshake(); // still cached
    await new Promise((r) => setTimeout(r, 1050));
    await expect(connect(g, id).handshake()).rejects.toThrow(`alert ${AlertDescription.certificateRevoked}`);
  });

  it('lets in a certificate attached after its thing’s principals were cached', async () => {
    const g = gateway();
    const first = pki.device('aws-late-1', 'thing-b');
    iot.register(first.fingerprint);
    iot.attach(first.fingerprint, 'thing-b');
    await connect(g, first).handshake();
    const late = pki.device('aws-late-2', 'thing-b');
    iot.register(late.fingerprint);
    iot.attach(late.fingerprint, 'thing-b');
    await new Promise((r) => setTimeout(r, 1050));
    await connect(g, late).handshake();
  });

  it('bounds the cached answers and reports the cap', async () => {
    const g = gateway(60_000, 1);
    const before = caps;
    for (const [name, thing] of [
      ['aws-cap-1', 'thing-a'],
      ['aws-cap-2', 'thing-c'],
    ]) {
      const id = pki.device(name, thing);
      iot.register(id.fingerprint);
      iot.attach(id.fingerprint, thing);
      await connect(g, id).handshake();
    }
    expect(caps).toBeGreaterThan(before);
  });
});
