/**
 * Hostile input on the certificate path: the chain verifier and the raw public key check are fed random and
 * mutated bytes and never throw (the message parsers and the DER reader are fuzzed in test/fuzz);
 * a client presenting garbage as its certificate, or a point off the curve, fails its handshake cleanly.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  pemCertificates,
  PeerVerifier,
  readTrustAnchors,
  verifyRawPublicKey,
} from '../../src/dtls/certificates/peer-verifier.js';
import { AlertDescription } from '../../src/dtls/protocol/constants.js';
import { ephemeralKey, sharedSecret } from '../../src/dtls/crypto/ecdh.js';
import { TestPki } from '../support/certificates.js';
import { DtlsHarness } from '../support/dtls-harness.js';
import { prng, randomBytes as seededBytes } from '../support/prng.js';

const rand = prng(16_16_16);
const randInt = (n: number): number => Math.floor(rand() * n);

let pki: TestPki;
let h: DtlsHarness | undefined;
beforeAll(() => {
  pki = new TestPki();
});
afterAll(() => pki.close());
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A copy of `b` with a few random bytes changed, cut short, or both. */
function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = randInt(4); i >= 0; i--) out[randInt(out.length)] = randInt(256);
  return rand() < 0.3 ? out.subarray(0, randInt(out.length)) : out;
}

describe('the verifier under random and mutated input', () => {
  it('never throws (the message parsers and the DER walk are fuzzed by the targets of test/fuzz)', () => {
    const d = pki.device('fuzz');
    const chain = pemCertificates(d.cert);
    const verifier = new PeerVerifier(readTrustAnchors(readFileSync(pki.caFile, 'utf8')), 3, 10, () => {});
    const key = Buffer.from(pki.rawKey('fuzz-key').publicKey, 'base64');
    const list = Buffer.concat([
      Buffer.from([0, 0, 0]),
      ...chain.map((c) => Buffer.concat([Buffer.from([0, c.length >> 8, c.length & 0xff]), c])),
    ]);
    list.writeUIntBE(list.length - 3, 0, 3);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const junk = seededBytes(rand, randInt(200));
      for (const b of [junk, mutate(list), mutate(chain[0]), mutate(key)]) verifyRawPublicKey(b);
      const r = verifier.verifyChain([mutate(chain[0]), chain[1]], Date.now());
      if (typeof r !== 'string') accepted++;
    }
    // A changed byte in the signed part breaks the issuer's signature: only mutations that missed it pass.
    expect(accepted).toBeLessThan(3000);
  });

  it('refuses ECDH points that are not on the curve', () => {
    const { privateKey, point } = ephemeralKey();
    expect(sharedSecret(privateKey, point)).toHaveLength(32);
    const bad = Buffer.from(point);
    bad[40] ^= 1;
    expect(sharedSecret(privateKey, bad)).toBeUndefined();
    expect(sharedSecret(privateKey, point.subarray(0, 33))).toBeUndefined();
    expect(sharedSecret(privateKey, Buffer.alloc(65))).toBeUndefined();
  });
});

describe('a client presenting garbage', () => {
  it('as its certificate gets bad_certificate and leaves no session', async () => {
    const server = pki.server();
    h = new DtlsHarness(
      { certificate: { certFile: server.certFile, keyFile: server.keyFile }, trustAnchors: pki.caFile },
      [],
    );
    const d = pki.device('garbage-holder');
    const c = h.client({
      cipherSuites: [0xc0ae],
      certificate: { key: createPrivateKey(d.key), chain: [seededBytes(rand, 300)] },
    });
    await expect(c.handshake()).rejects.toThrow(`alert ${AlertDescription.badCertificate}`);
    expect(await h.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_certificate' })).toBe(1);
    expect(h.server.sessionCount).toBe(0);
    expect(h.server.handshakeCount).toBe(0);
  });
});

describe('mutated certificate handshakes', () => {
  it('never throw and leave no state behind', async () => {
    const server = pki.server('mut-server');
    const d = pki.device('mut-dev');
    h = new DtlsHarness(
      { certificate: { certFile: server.certFile, keyFile: server.keyFile }, trustAnchors: pki.caFile },
      [{ id: 'mut-dev', thing: 'mut-dev', ips: [], x509: { fingerprint: d.fingerprint } }],
    );
    const harness = h;
    let seen = 0;
    // Flight 5 (the third datagram a client sends: hello, hello with cookie, flight 5) gets a few bytes changed.
    harness.drop = (dir, datagram) => {
      if (dir === 'to-server' && ++seen % 3 === 0)
        for (let i = randInt(4); i >= 0; i--) datagram[randInt(datagram.length)] = randInt(256);
      return false;
    };
    const outcomes = { ok: 0, failed: 0 };
    for (let i = 0; i < 40; i++) {
      seen = 0;
      const c = harness.client({
        cipherSuites: [0xc0ae],
        certificate: { key: createPrivateKey(d.key), chain: pemCertificates(d.cert) },
        retransmitMs: 20,
      });
      const timer = setTimeout(() => c.abort('gave up'), 1500);
      await c.handshake().then(
        () => outcomes.ok++,
        () => outcomes.failed++,
      );
      clearTimeout(timer);
      c.stop('closed');
    }
    expect(outcomes.ok + outcomes.failed).toBe(40);
    expect(outcomes.failed).toBeGreaterThan(0);
    // And it still serves a client whose datagrams arrive intact.
    harness.drop = () => false;
    await harness
      .client({
        cipherSuites: [0xc0ae],
        certificate: { key: createPrivateKey(d.key), chain: pemCertificates(d.cert) },
      })
      .handshake();
  });
});
