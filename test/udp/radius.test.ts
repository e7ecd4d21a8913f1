/**
 * The carrier's RADIUS accounting with FreeRADIUS's radclient: Start with 3GPP attributes names the device on
 * an address, uplinks from that address are published with IMSI, IMEI and MSISDN, Stop forgets it; a wrong
 * shared secret or an address that is not a client is refused without an answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { freeUdpPorts, radclient, socatSend } from '../support/raw-peers.js';

const START = [
  'Acct-Status-Type = Start',
  'Framed-IP-Address = 127.0.0.2',
  'Acct-Session-Id = "sess-1"',
  'User-Name = "meter@iot.apn"',
  'Calling-Station-Id = "491701234567"',
  '3GPP-IMSI = "262019876543210"',
  '3GPP-IMEISV = "3569380356438091"',
].join(', ');

async function metric(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await gw.metrics.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('RADIUS accounting names raw UDP devices (radclient)', () => {
  let gw: TestGateway;
  let radiusPort: number;
  let udpPort: number;
  beforeAll(async () => {
    [radiusPort, udpPort] = await freeUdpPorts(2);
    gw = await startTestGateway({
      devices: [{ id: 'meter-7', imsi: '262019876543210' }],
      files: {},
      config: {
        radius: {
          bind: '127.0.0.1',
          port: radiusPort,
          clients: [{ address: '127.0.0.0/8', secret: 'text:testing123' }],
        },
        udp: { port: udpPort, identity: ['ip', 'radius'], reply: { ack: '06' } },
        downlink: { enabled: false },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('drops uplinks from the address before the session starts', async () => {
    const r = await socatSend(udpPort, Buffer.from('early'), { source: '127.0.0.2' });
    expect(r.stdout.length).toBe(0);
    expect(await metric(gw, 'cellgate_udp_datagrams_total', 'listener="udp",outcome="unknown_device"')).toBe(
      1,
    );
  });

  it('answers Accounting-Start and publishes the next uplink from that address with IMSI, IMEI and MSISDN', async () => {
    const r = await radclient(radiusPort, 'testing123', START);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain('Received Accounting-Response');
    expect(await metric(gw, 'cellgate_radius_requests_total', 'type="start",outcome="recorded"')).toBe(1);
    const up = await socatSend(udpPort, Buffer.from('reading'), { source: '127.0.0.2' });
    expect(up.stdout).toEqual(Buffer.from([0x06]));
    await gw.recorder.waitFor(1);
    expect(gw.recorder.messages[0].envelope).toMatchObject({
      deviceId: 'meter-7',
      identity: 'radius',
      imsi: '262019876543210',
      imei: '356938035643809',
      msisdn: '491701234567',
      transport: 'udp',
    });
  });

  it('refuses a request made with the wrong shared secret: no answer, no change', async () => {
    const r = await radclient(
      radiusPort,
      'not-the-secret',
      'Acct-Status-Type = Stop, Framed-IP-Address = 127.0.0.2, Acct-Session-Id = "sess-1"',
      1,
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout.toString()).not.toContain('Received Accounting-Response');
    expect(
      await metric(gw, 'cellgate_radius_requests_total', 'type="unknown",outcome="bad_authenticator"'),
    ).toBe(1);
    const up = await socatSend(udpPort, Buffer.from('still mapped'), { source: '127.0.0.2' });
    expect(up.stdout).toEqual(Buffer.from([0x06]));
  });

  it('a Stop of another session leaves the address; the Stop of its session removes it', async () => {
    const other = await radclient(
      radiusPort,
      'testing123',
      'Acct-Status-Type = Stop, Framed-IP-Address = 127.0.0.2, Acct-Session-Id = "old-session"',
    );
    expect(other.code).toBe(0);
    expect(await metric(gw, 'cellgate_radius_requests_total', 'type="stop",outcome="not_found"')).toBe(1);
    const stop = await radclient(
      radiusPort,
      'testing123',
      'Acct-Status-Type = Stop, Framed-IP-Address = 127.0.0.2, Acct-Session-Id = "sess-1"',
    );
    expect(stop.code).toBe(0);
    expect(await metric(gw, 'cellgate_radius_requests_total', 'type="stop",outcome="removed"')).toBe(1);
    const n = gw.recorder.messages.length;
    const up = await socatSend(udpPort, Buffer.from('after stop'), { source: '127.0.0.2' });
    expect(up.stdout.length).toBe(0);
    expect(gw.recorder.messages.length).toBe(n);
  });

  it('ignores a request from an address that is not a client', async () => {
    const g2 = await startTestGateway({
      devices: [],
      config: {
        radius: {
          bind: '127.0.0.1',
          port: (await freeUdpPorts(1))[0],
          clients: [{ address: '10.1.2.3', secret: 'text:x' }],
        },
        downlink: { enabled: false },
      },
    });
    try {
      const r = await radclient(g2.ports.radius as number, 'x', START, 1);
      expect(r.code).not.toBe(0);
      expect(
        await metric(g2, 'cellgate_radius_requests_total', 'type="unknown",outcome="unknown_client"'),
      ).toBe(1);
    } finally {
      await g2.stop();
    }
  });
});
