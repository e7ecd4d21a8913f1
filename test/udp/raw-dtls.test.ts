/**
 * Raw UDP over DTLS with OpenSSL's s_client piping bytes: the same DTLS server and device credentials as CoAP,
 * each application record one uplink (transport udp-dtls), the acknowledgement sent back in the session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { run } from '../support/processes.js';
import { freeUdpPorts } from '../support/raw-peers.js';

const KEY = 'secretPSK';

function sClient(port: number, identity: string, key: string, input: string, until: string) {
  return run(
    'openssl',
    [
      's_client',
      '-dtls1_2',
      '-psk',
      Buffer.from(key).toString('hex'),
      '-psk_identity',
      identity,
      '-cipher',
      'PSK-AES128-CCM8',
      '-quiet',
      '-connect',
      `127.0.0.1:${port}`,
    ],
    { input, until, timeoutMs: 5000 },
  );
}

describe('raw UDP over DTLS (openssl s_client)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    const [dtlsPort] = await freeUdpPorts(1);
    gw = await startTestGateway({
      devices: [
        { id: 'secure-1', psk: { identity: 'secure-1', key: `text:${KEY}` } },
        { id: 'plain-1', ip: '127.0.0.1' },
      ],
      config: { udp: { dtlsPort, reply: { ack: '4f4b0a' } }, downlink: { enabled: false } },
    });
  });
  afterAll(() => gw?.stop());

  it('publishes the bytes of an application record as an uplink of the session’s device and acknowledges it', async () => {
    const r = await sClient(gw.ports.udpDtls as number, 'secure-1', KEY, 'meter 42\n', 'OK\n');
    expect(r.stdout).toContain('OK\n');
    await gw.recorder.waitFor(1);
    const e = gw.recorder.messages[0].envelope;
    expect(e).toMatchObject({
      deviceId: 'secure-1',
      transport: 'udp-dtls',
      identity: 'dtls',
      pskIdentity: 'secure-1',
    });
    expect(Buffer.from(e.raw, 'base64').toString()).toBe('meter 42\n');
  });

  it('completes no handshake with a wrong key, so nothing is published', async () => {
    const before = gw.recorder.messages.length;
    const r = await sClient(gw.ports.udpDtls as number, 'secure-1', 'wrong', 'x\n', 'OK\n');
    expect(r.stdout).not.toContain('OK\n');
    expect(gw.recorder.messages.length).toBe(before);
  });

  it('keeps the DTLS identity first: the source IP of another device does not name the sender', async () => {
    const before = gw.recorder.messages.length;
    const r = await sClient(gw.ports.udpDtls as number, 'secure-1', KEY, 'again\n', 'OK\n');
    expect(r.stdout).toContain('OK\n');
    await gw.recorder.waitFor(before + 1);
    expect(gw.recorder.messages[before].envelope.deviceId).toBe('secure-1');
  });
});
