/**
 * Whole gateways sharing DTLS sessions through Redis (`state.store: redis`), over real UDP: a device that
 * handshook with one replica wakes behind a new port, reaches another replica and is answered without a
 * handshake; a replica that shuts down does not end the sessions it held (no close_notify), so the device
 * carries on with a replica that started later; the sealing key and the store show in metrics and /readyz.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage } from '../../src/coap/message.js';
import { DtlsClientCore } from '../../src/dtls/client.js';
import { metricValue } from '../support/dtls-harness.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { dropPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('shared-sessions');
const key = randomBytes(32).toString('base64');

/** A DTLS device whose next datagrams go to whichever gateway port the test says, from a new socket if asked. */
class Device {
  readonly core: DtlsClientCore;
  private socket!: Socket;
  private messageId = 1;
  target = 0;

  constructor() {
    this.core = new DtlsClientCore(
      { identity: 'secure-1', key: Buffer.from('secretPSK'), cid: Buffer.from([1, 2, 3]), retransmitMs: 200 },
      (d) => this.socket.send(d, this.target, '127.0.0.1'),
    );
  }

  async rebind(): Promise<void> {
    this.socket?.close();
    const s = createSocket('udp4');
    s.on('message', (m) => this.core.receive(m));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    this.socket = s;
  }

  /** A confirmable POST /telemetry, retransmitted (new records) until answered. */
  async uplink(body: object, timeoutMs = 4000, mid = this.messageId++): Promise<CoapMessage> {
    const request = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: mid,
      token: Buffer.from([mid]),
      options: [[Option.URI_PATH, 'telemetry']],
      payload: Buffer.from(JSON.stringify(body)),
    });
    const answer = new Promise<CoapMessage>((resolve, reject) => {
      const end = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      this.core.onData = (d) => {
        const m = parseMessage(d);
        if (m instanceof CoapMessage && m.messageId === mid) {
          clearTimeout(end);
          clearInterval(again);
          resolve(m);
        }
      };
      const again = setInterval(() => this.core.write(request), 500);
      end.unref();
    });
    this.core.write(request);
    return answer;
  }

  close(): void {
    this.socket?.close();
  }
}

describe('gateways sharing DTLS sessions through Redis', () => {
  const gateways: TestGateway[] = [];
  const device = new Device();

  const replica = async () => {
    const gw = await startTestGateway({
      config: {
        state: {
          store: 'redis',
          encryptionKeyFile: 'state.key',
          redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
        },
      },
      files: { '../state.key': key },
    });
    gateways.push(gw);
    return gw;
  };

  beforeAll(async () => {
    await device.rebind();
  });
  afterAll(async () => {
    device.close();
    for (const gw of gateways) await gw.stop();
    const r = testRedis(prefix);
    await dropPrefix(r, prefix);
    await r.close();
  });

  it('answers a moved device on another replica, and across a replica replaced mid-way, with one handshake', async () => {
    const a = await replica();
    const b = await replica();
    device.target = a.ports.dtls as number;
    await device.core.handshake();
    expect((await device.uplink({ n: 1 })).code).toBe(Code.CHANGED);

    // The device sleeps, wakes behind a new NAT port, and its flow lands on b.
    await device.rebind();
    device.target = b.ports.dtls as number;
    expect((await device.uplink({ n: 2 })).code).toBe(Code.CHANGED);
    expect(await metricValue(b.metrics, 'cellgate_dtls_takeovers_total', { outcome: 'ok' })).toBe(1);
    expect(b.recorder.messages.at(-1)?.envelope).toMatchObject({
      transport: 'coaps',
      pskIdentity: 'secure-1',
    });

    // b is replaced (SIGTERM drain, then a new replica): the session is not closed, the device carries on.
    await b.shutdown('SIGTERM');
    expect(device.core.alerts).toEqual([]);
    const c = await replica();
    await device.rebind();
    device.target = c.ports.dtls as number;
    expect((await device.uplink({ n: 3 })).code).toBe(Code.CHANGED);
    expect(device.core.handshakes).toBe(1);

    // A CON whose answer was lost is retransmitted after the next move: published again (if at all) under
    // the same messageId, since every replica names the session the same.
    await device.uplink({ n: 4 });
    const first = c.recorder.messages.at(-1)!.envelope as { messageId: string };
    await device.rebind();
    device.target = a.ports.dtls as number;
    expect((await device.uplink({ n: 4 }, 4000, 4)).code).toBe(Code.CHANGED);
    const again = a.recorder.messages.filter(
      (m) => (m.envelope as { messageId: string }).messageId === first.messageId,
    );
    expect(a.recorder.messages.length - again.length).toBe(1); // a's only other message: the first uplink
    const ready = (await (await fetch(`http://127.0.0.1:${c.ports.http}/readyz`)).json()) as object;
    expect(ready).toMatchObject({ ready: true, store: { kind: 'redis', cluster: false, reachable: true } });
    const text = await (await fetch(`http://127.0.0.1:${c.ports.http}/metrics`)).text();
    expect(text).toMatch(/^cellgate_state_store_up 1$/m);
    expect(text).toMatch(/^cellgate_state_store_seconds_count\{op="claim"\} 1$/m);
    expect(text).toMatch(/^cellgate_dtls_session_cache_total\{result="miss"\} 1$/m);
  });
});
