/**
 * Interop with real, independent DTLS clients against the UDP listener: OpenSSL's s_client (CCM_8, GCM,
 * CCM), GnuTLS's gnutls-cli and node-dtls-client, with an application that echoes what they send. libcoap's
 * DTLS clients are tested through the whole gateway (test/gateway/dtls-interop.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dtls } from 'node-dtls-client';
import { device, startListener, type ListenerHarness } from '../support/dtls-harness.js';
import { run } from '../support/processes.js';

const KEY = 'secretPSK';
const HEX = Buffer.from(KEY).toString('hex');
const GNUTLS_PRIORITY = 'NONE:+VERS-DTLS1.2:+AEAD:+PSK:+COMP-NULL:+SIGN-ALL:+CURVE-ALL';

let srv: ListenerHarness;
beforeAll(async () => {
  srv = await startListener({}, [device('dev1', KEY), device('dev2', KEY)]);
});
afterAll(() => srv.close());

function deliveredText(identity: string): string[] {
  return srv.delivered.filter((d) => d.peer.pskIdentity === identity).map((d) => d.data.toString());
}

describe('openssl s_client -dtls1_2', () => {
  for (const cipher of ['PSK-AES128-CCM8', 'PSK-AES128-GCM-SHA256', 'PSK-AES128-CCM']) {
    it(`completes a handshake with ${cipher} and gets its data echoed`, async () => {
      const line = `hello over ${cipher}\n`;
      const r = await run(
        'openssl',
        [
          's_client',
          '-dtls1_2',
          '-psk',
          HEX,
          '-psk_identity',
          'id-dev1',
          '-cipher',
          cipher,
          '-quiet',
          '-connect',
          `127.0.0.1:${srv.port}`,
        ],
        { input: line, until: line },
      );
      expect(r.stdout).toContain(line);
      expect(deliveredText('id-dev1')).toContain(line);
      const peer = srv.delivered.at(-1)!.peer;
      expect(peer.transport).toBe('coaps');
      expect(peer.deviceId).toBe('dev1');
    });
  }

  it('fails with decrypt_error for a wrong key and for an unknown identity, delivering nothing', async () => {
    const before = srv.delivered.length;
    for (const [identity, key] of [
      ['id-dev1', '00112233'],
      ['nobody', HEX],
    ]) {
      const r = await run(
        'openssl',
        [
          's_client',
          '-dtls1_2',
          '-psk',
          key,
          '-psk_identity',
          identity,
          '-cipher',
          'PSK-AES128-CCM8',
          '-quiet',
          '-connect',
          `127.0.0.1:${srv.port}`,
        ],
        { input: 'secret data\n', timeoutMs: 5000 },
      );
      expect(r.stderr).toMatch(/alert decrypt error/);
    }
    expect(srv.delivered.length).toBe(before);
    expect(
      await srv.metric('cellgate_dtls_handshakes_failed_total', { reason: 'bad_key' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      await srv.metric('cellgate_dtls_handshakes_failed_total', { reason: 'unknown_identity' }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('gnutls-cli', () => {
  for (const suite of ['AES-128-CCM-8', 'AES-128-GCM', 'AES-128-CCM']) {
    it(`completes a handshake with ${suite} (renegotiation_info, record_size_limit) and gets its data echoed`, async () => {
      const line = `gnutls ${suite}\n`;
      const r = await run(
        'gnutls-cli',
        [
          '-u',
          '--pskusername',
          'id-dev2',
          '--pskkey',
          HEX,
          '--priority',
          `${GNUTLS_PRIORITY}:+${suite}`,
          '-p',
          String(srv.port),
          '127.0.0.1',
        ],
        { input: line, until: line },
      );
      expect(r.stdout).toContain(line);
      expect(deliveredText('id-dev2')).toContain(line);
    });
  }
});

describe('node-dtls-client', () => {
  for (const cipher of ['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_GCM_SHA256'] as const) {
    it(`completes a handshake with ${cipher} (no extensions at all) and gets its data echoed`, async () => {
      const socket = dtls.createSocket({
        type: 'udp4',
        address: '127.0.0.1',
        port: srv.port,
        psk: { 'id-dev2': KEY },
        ciphers: [cipher],
        timeout: 3000,
      });
      const echoed = await new Promise<string>((resolve, reject) => {
        socket.on('connected', () => socket.send(Buffer.from(`node ${cipher}`)));
        socket.on('message', (m: Buffer) => resolve(m.toString()));
        socket.on('error', reject);
      });
      socket.close();
      expect(echoed).toBe(`node ${cipher}`);
    });
  }
});
