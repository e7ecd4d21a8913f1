/**
 * Bad input on the raw UDP and RADIUS ports: random datagrams, truncated frames, RADIUS packets that are signed
 * correctly but malformed inside. Nothing crashes, nothing is published or answered that should not be, every
 * datagram is counted, and a good uplink and a good accounting request still work afterwards.
 */
import { createSocket } from 'node:dgram';
import radius from 'radius';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/radius/accounting.js';
import { loadDictionaries } from '../../src/radius/dictionary.js';
import { toBcd } from '../../src/udp/frame.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { prng, randomBytes } from '../support/prng.js';
import { freeUdpPorts, radclient, socatSend } from '../support/raw-peers.js';

const IMEI = '356938035643809';
const SECRET = 'testing123';

async function total(gw: TestGateway, name: string): Promise<number> {
  const text = await gw.metrics.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

describe('bad input on the raw UDP and RADIUS ports', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    const [udp, rad] = await freeUdpPorts(2);
    gw = await startTestGateway({
      devices: [{ id: 'meter-1', imei: IMEI }],
      config: {
        udp: {
          port: udp,
          identity: ['frame', 'radius'],
          frame: { id: { offset: 0, length: 8 }, counter: { offset: 8, bytes: 2 } },
          reply: { ack: '06 counter' },
        },
        radius: {
          bind: '127.0.0.1',
          port: rad,
          clients: [{ address: '127.0.0.1', secret: `text:${SECRET}` }],
        },
        downlink: { enabled: false },
      },
    });
  });
  afterAll(() => gw?.stop());

  it('survives random datagrams and malformed accounting, then still works', async () => {
    const rand = prng(17);
    const s = createSocket('udp4');
    const replies: Buffer[] = [];
    s.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const send = (b: Buffer, port: number) =>
      new Promise<void>((r) => s.send(b, port, '127.0.0.1', () => r()));
    const N = 400;
    for (let i = 0; i < N; i++) {
      const len = Math.floor(rand() * (i % 10 === 0 ? 1400 : 40));
      await send(randomBytes(rand, len), gw.ports.udp as number);
    }
    // Truncated frames, the IMEI whole but the counter cut: dropped, never taken without a counter.
    const full = Buffer.concat([toBcd(IMEI, 8), Buffer.of(0, 7)]);
    for (let cut = 0; cut < 10; cut++) await send(full.subarray(0, cut), gw.ports.udp as number);
    // RADIUS: random bytes, then correctly signed packets whose attributes are broken.
    loadDictionaries();
    const good = radius.encode({
      code: 'Accounting-Request',
      identifier: 1,
      secret: SECRET,
      attributes: [
        ['Acct-Status-Type', 'Start'],
        ['Framed-IP-Address', '127.0.0.3'],
      ],
    });
    const broken: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const p = Buffer.from(good);
      const at = 20 + Math.floor(rand() * (p.length - 20));
      p[at] = Math.floor(rand() * 256);
      broken.push(signRequest(p, Buffer.from(SECRET)));
    }
    const shortInt = Buffer.concat([good.subarray(0, 20), Buffer.from([40, 3, 1])]);
    shortInt.writeUInt16BE(shortInt.length, 2);
    broken.push(signRequest(shortInt, Buffer.from(SECRET)));
    for (let i = 0; i < 200; i++)
      await send(randomBytes(rand, Math.floor(rand() * 200)), gw.ports.radius as number);
    for (const b of broken) await send(b, gw.ports.radius as number);
    await new Promise((r) => setTimeout(r, 300));
    s.close();

    expect(gw.recorder.messages.length).toBe(0);
    const text = await gw.metrics.metrics();
    expect(text).toContain('cellgate_udp_datagrams_total{listener="udp",outcome="malformed"} 2');
    // Only accounting packets the gateway could read were answered.
    expect(replies.every((r) => r[0] === 5)).toBe(true);
    expect(await total(gw, 'cellgate_udp_datagrams_total')).toBe(N + 10);
    expect(await total(gw, 'cellgate_radius_requests_total')).toBe(200 + broken.length);

    const c = Buffer.alloc(2);
    c.writeUInt16BE(1);
    const ok = await socatSend(gw.ports.udp as number, Buffer.concat([toBcd(IMEI, 8), c, Buffer.from('ok')]));
    expect(ok.stdout.toString('hex')).toBe('060001');
    const acct = await radclient(
      gw.ports.radius as number,
      SECRET,
      'Acct-Status-Type = Start, Framed-IP-Address = 127.0.0.4',
    );
    expect(acct.code).toBe(0);
  });
});
