/** The NoSec path against real, independent clients: libcoap's coap-client-notls and node-coap. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import coap from 'coap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coapClient } from '../support/libcoap.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { prng, randomBytes } from '../support/prng.js';

const firmware = randomBytes(prng(42), 10_000);

describe('NoSec interop', () => {
  let gw: TestGateway;
  let work: string;
  let url: (path: string) => string;

  beforeAll(async () => {
    gw = await startTestGateway({ files: { 'fw.bin': firmware, 'tiny.txt': 'hi' } });
    work = mkdtempSync(join(tmpdir(), 'cellgate-client-'));
    url = (path) => `coap://127.0.0.1:${gw.coapPort}/${path}`;
  });
  afterAll(async () => {
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  });

  describe('libcoap coap-client-notls', () => {
    it('CON POST is published once with the exact bytes and answered 2.04', async () => {
      const before = gw.recorder.messages.length;
      const r = await coapClient('coap-client-notls', [
        '-m',
        'post',
        '-e',
        'temp=21.5',
        '-B',
        '5',
        url('telemetry?id=dev-1'),
      ]);
      expect(r.code).toBe(0);
      expect(r.stderr).not.toMatch(/4\.\d\d|5\.\d\d/);
      await gw.recorder.waitFor(before + 1);
      const m = gw.recorder.messages[before];
      expect(m.topic).toBe('cellgate/thing-1/telemetry');
      expect(m.envelope).toMatchObject({
        deviceId: 'dev-1',
        thing: 'thing-1',
        path: 'telemetry',
        method: 'POST',
        transport: 'coap',
        raw: Buffer.from('temp=21.5').toString('base64'),
        decoded: null,
        coap: { type: 'CON' },
      });
      expect(new Date(m.envelope.receivedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(gw.recorder.messages.length).toBe(before + 1);
    });

    it('NON POST is published once', async () => {
      const before = gw.recorder.messages.length;
      const r = await coapClient('coap-client-notls', [
        '-N',
        '-m',
        'post',
        '-e',
        'non!',
        '-B',
        '2',
        url('n?id=dev-2'),
      ]);
      expect(r.code).toBe(0);
      await gw.recorder.waitFor(before + 1);
      expect(gw.recorder.messages[before].envelope).toMatchObject({
        deviceId: 'dev-2',
        coap: { type: 'NON' },
      });
      expect(gw.recorder.raws()[before]).toEqual(Buffer.from('non!'));
    });

    it('a 4.5 KB Block1 upload with -b 64 arrives whole, published once', async () => {
      const body = randomBytes(prng(7), 4500);
      const file = join(work, 'up.bin');
      writeFileSync(file, body);
      const before = gw.recorder.messages.length;
      const r = await coapClient('coap-client-notls', [
        '-m',
        'post',
        '-b',
        '64',
        '-f',
        file,
        '-B',
        '10',
        url('bulk?id=dev-1'),
      ]);
      expect(r.code).toBe(0);
      await gw.recorder.waitFor(before + 1);
      await new Promise((r) => setTimeout(r, 200));
      expect(gw.recorder.messages.length).toBe(before + 1);
      expect(gw.recorder.raws()[before]).toEqual(body);
      expect(gw.recorder.messages[before].envelope.coap?.blocks).toBe(Math.ceil(4500 / 64));
    });

    it.each([16, 64, 256, 512, 1024])(
      'a 10 KB Block2 download at %i-byte blocks is byte-exact',
      async (size) => {
        const out = join(work, `fw-${size}.bin`);
        const r = await coapClient('coap-client-notls', [
          '-m',
          'get',
          '-b',
          String(size),
          '-o',
          out,
          '-B',
          '20',
          url('fw/fw.bin'),
        ]);
        expect(r.code).toBe(0);
        expect(readFileSync(out)).toEqual(firmware);
      },
    );

    it('an unknown device gets 4.01 and nothing is published', async () => {
      const before = gw.recorder.messages.length;
      const r = await coapClient('coap-client-notls', [
        '-m',
        'post',
        '-e',
        'x',
        '-B',
        '2',
        url('t?id=stranger'),
      ]);
      expect(r.stdout.toString() + r.stderr).toMatch(/4\.01/);
      await new Promise((r) => setTimeout(r, 200));
      expect(gw.recorder.messages.length).toBe(before);
    });
  });

  describe('node-coap client', () => {
    function post(
      path: string,
      payload: Buffer,
      confirmable = true,
    ): Promise<{ code: string; payload: Buffer }> {
      return new Promise((resolve, reject) => {
        const req = coap.request({
          hostname: '127.0.0.1',
          port: gw.coapPort,
          pathname: path.split('?')[0],
          query: path.split('?')[1],
          method: 'POST',
          confirmable,
        });
        req.on('response', (res: { code: string; payload: Buffer }) =>
          resolve({ code: res.code, payload: res.payload }),
        );
        req.on('error', reject);
        req.end(payload);
      });
    }

    it('POSTs CON and NON uplinks, each published once with the exact bytes', async () => {
      const before = gw.recorder.messages.length;
      const a = await post('node/a?id=dev-2', Buffer.from([0, 1, 2, 255]));
      const b = await post('node/b?id=dev-2', Buffer.from('non'), false);
      expect(a.code).toBe('2.04');
      expect(b.code).toBe('2.04');
      await gw.recorder.waitFor(before + 2);
      const raws = gw.recorder.raws().slice(before);
      expect(raws).toEqual([Buffer.from([0, 1, 2, 255]), Buffer.from('non')]);
      expect(gw.recorder.messages.slice(before).map((m) => m.envelope.path)).toEqual(['node/a', 'node/b']);
    });

    it('downloads a file block-wise', async () => {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const req = coap.request({
          hostname: '127.0.0.1',
          port: gw.coapPort,
          pathname: '/fw/fw.bin',
          method: 'GET',
        });
        req.on('response', (res: { payload: Buffer }) => resolve(res.payload));
        req.on('error', reject);
        req.end();
      });
      expect(body).toEqual(firmware);
    });
  });
});
