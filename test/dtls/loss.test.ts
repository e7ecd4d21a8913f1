/**
 * Handshakes and data through a lossy, duplicating, reordering path (seeded, so a failure reproduces):
 * handshakes complete, data flows, no record is ever delivered twice to the application, and through the
 * whole gateway every uplink is published exactly once.
 */
import { createPrivateKey } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { pemCertificates } from '../../src/dtls/certificates/peer-verifier.js';
import { TestPki } from '../support/certificates.js';
import { connectDtls, type DtlsUdpClient } from '../support/dtls-client.js';
import { device, startListener, type ListenerHarness } from '../support/dtls-harness.js';
import { LossyRelay } from '../support/lossy-relay.js';
import { startTestGateway } from '../support/gateway.js';
import { coapClient } from '../support/libcoap.js';

let srv: ListenerHarness | undefined;
let proxy: LossyRelay | undefined;
const clients: DtlsUdpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close(false);
  await proxy?.close();
  await srv?.close();
  proxy = srv = undefined;
});

/** Sends `text` until its echo comes back; each attempt is a new record tagged with the attempt number. */
async function deliver(c: DtlsUdpClient, text: string): Promise<number> {
  for (let attempt = 1; attempt <= 12; attempt++) {
    try {
      const echo = await c.request(Buffer.from(`${text}#${attempt}`), 250);
      if (echo.toString().startsWith(`${text}#`)) return attempt;
    } catch {
      // lost on the way there or back: try again with a new record
    }
  }
  throw new Error(`${text} never got through`);
}

describe('through a lossy path', () => {
  it('completes handshakes of clients with Connection IDs, delivers every record at most once', async () => {
    const devices = Array.from({ length: 12 }, (_, i) => device(`d${i}`));
    srv = await startListener({ retransmitInitialMs: 200 }, devices);
    proxy = await LossyRelay.start({
      targetPort: srv.port,
      seed: 7,
      loss: 0.15,
      duplicate: 0.3,
      reorder: 0.3,
      maxDelayMs: 40,
    });
    const connected = await Promise.all(
      devices.map((d, i) =>
        connectDtls('127.0.0.1', proxy!.port, {
          identity: d.psk!.identity,
          key: d.psk!.key,
          cid: Buffer.from([i]),
          retransmitMs: 150,
        }),
      ),
    );
    clients.push(...connected);
    expect(srv.listener.server.sessionCount).toBe(devices.length);
    await Promise.all(
      connected.map(async (c, i) => {
        for (let j = 0; j < 8; j++) await deliver(c, `d${i}-m${j}`);
      }),
    );
    const payloads = srv.delivered.map((d) => `${d.peer.key}:${d.data.toString()}`);
    expect(new Set(payloads).size).toBe(payloads.length);
    for (let i = 0; i < devices.length; i++)
      for (let j = 0; j < 8; j++) expect(payloads.some((p) => p.includes(`:d${i}-m${j}#`))).toBe(true);
    expect(proxy.stats.dropped).toBeGreaterThan(0);
    expect(proxy.stats.duplicated).toBeGreaterThan(0);
    expect(await srv.metric('cellgate_dtls_records_dropped_total', { reason: 'replay' })).toBeGreaterThan(0);
  });

  it('completes ECDHE-ECDSA handshakes whose certificate chains take several fragments each way', async () => {
    const pki = new TestPki();
    try {
      // The gateway's chain (its certificate and the intermediate) needs several datagrams at a 400-byte MTU.
      const server = pki.server('server', 'intermediate');
      const ids = Array.from({ length: 6 }, (_, i) => pki.device(`c${i}`));
      srv = await startListener(
        {
          retransmitInitialMs: 200,
          pathMtu: 400,
          certificate: { certFile: server.certFile, keyFile: server.keyFile },
          trustAnchors: pki.caFile,
        },
        ids.map((id, i) => ({ id: `c${i}`, thing: `c${i}`, ips: [], x509: { fingerprint: id.fingerprint } })),
      );
      proxy = await LossyRelay.start({
        targetPort: srv.port,
        seed: 11,
        loss: 0.15,
        duplicate: 0.3,
        reorder: 0.3,
        maxDelayMs: 40,
      });
      const connected = await Promise.all(
        ids.map((id, i) =>
          connectDtls('127.0.0.1', proxy!.port, {
            identity: '',
            key: Buffer.alloc(0),
            cipherSuites: [0xc0ae],
            certificate: { key: createPrivateKey(id.key), chain: pemCertificates(id.cert) },
            cid: Buffer.from([i]),
            retransmitMs: 150,
            maxDatagramBytes: 400 - 28,
          }),
        ),
      );
      clients.push(...connected);
      expect(srv.listener.server.sessionCount).toBe(ids.length);
      await Promise.all(connected.map((c, i) => deliver(c, `c${i}`)));
      for (let i = 0; i < ids.length; i++)
        expect(srv.delivered.some((d) => d.peer.deviceId === `c${i}` && d.peer.credential === 'x509')).toBe(
          true,
        );
      expect(proxy.stats.dropped).toBeGreaterThan(0);
      expect(await srv.metric('cellgate_dtls_flights_retransmitted_total')).toBeGreaterThan(0);
    } finally {
      pki.close();
    }
  });

  it('completes libcoap’s handshakes through the gateway and publishes each uplink exactly once', async () => {
    const gw = await startTestGateway({ config: { dtls: { retransmitInitialMs: 300 } } });
    try {
      proxy = await LossyRelay.start({
        targetPort: gw.ports.dtls!,
        seed: 3,
        loss: 0.2,
        duplicate: 0.3,
        reorder: 0.3,
        maxDelayMs: 40,
      });
      const sent = ['first uplink', 'second uplink', 'third uplink'];
      for (const payload of sent) {
        const r = await coapClient(
          'coap-client-openssl',
          [
            '-m',
            'post',
            '-e',
            payload,
            '-u',
            'secure-1',
            '-k',
            'secretPSK',
            '-B',
            '20',
            `coaps://127.0.0.1:${proxy.port}/t`,
          ],
          25_000,
        );
        expect(r.code, r.stderr).toBe(0);
      }
      await gw.recorder.waitForExactly(sent.length, 500);
      expect(gw.recorder.raws().map((b) => b.toString())).toEqual(sent);
      expect(gw.recorder.messages.every((m) => m.envelope.transport === 'coaps')).toBe(true);
      expect(proxy.stats.dropped + proxy.stats.duplicated + proxy.stats.delayed).toBeGreaterThan(0);
    } finally {
      await gw.stop();
    }
  }, 90_000);
});
