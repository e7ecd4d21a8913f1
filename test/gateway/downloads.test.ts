/** GET /fw/<name>: read-only, block-wise, and no path leaves the folder. */
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { CoapMessage, encodeMessage, parseMessage, type OptionEntry } from '../../src/coap/message.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { UdpClient } from '../support/udp-client.js';

let mid = 100;
function get(segments: string[], extra: OptionEntry[] = [], code: number = Code.GET): Buffer {
  return encodeMessage({
    type: MessageType.CON,
    code,
    messageId: mid++,
    options: [...segments.map((s) => [Option.URI_PATH, s] as OptionEntry), ...extra],
  });
}

describe('downloads', () => {
  let gw: TestGateway;
  let c: UdpClient;
  const ask = async (data: Buffer) =>
    parseMessage((await c.request(data, gw.coapPort, 3000)) as Buffer) as CoapMessage;

  beforeAll(async () => {
    gw = await startTestGateway({ files: { 'a.bin': Buffer.from('firmware-a') } });
    writeFileSync(join(gw.dir, 'secret.txt'), 'do not serve');
    symlinkSync(join(gw.dir, 'secret.txt'), join(gw.dir, 'files', 'link.txt'));
    c = await UdpClient.open();
  });
  afterAll(async () => {
    await c.close();
    await gw.stop();
  });

  it('serves a file with Content-Format 42 and an ETag, and answers 2.03 to a matching ETag', async () => {
    const m = await ask(get(['fw', 'a.bin']));
    expect(m.code).toBe(Code.CONTENT);
    expect(m.payload.toString()).toBe('firmware-a');
    expect(m.uint(Option.CONTENT_FORMAT)).toBe(42);
    const etag = m.opaque(Option.ETAG) as Buffer;
    expect(etag.length).toBe(8);
    const v = await ask(get(['fw', 'a.bin'], [[Option.ETAG, etag]]));
    expect(v.code).toBe(Code.VALID);
    expect(v.payloadLength).toBe(0);
  });

  it('gives a changed file a new ETag', async () => {
    const first = (await ask(get(['fw', 'a.bin']))).opaque(Option.ETAG) as Buffer;
    writeFileSync(join(gw.dir, 'files', 'a.bin'), 'firmware-a2');
    const m = await ask(get(['fw', 'a.bin']));
    expect(m.payload.toString()).toBe('firmware-a2');
    expect(m.opaque(Option.ETAG)).not.toEqual(first);
  });

  it.each([
    [['fw', '..', 'secret.txt']],
    [['fw', '..', '..', 'etc', 'passwd']],
    [['fw', '../secret.txt']],
    [['fw', '.']],
    [['fw', '']],
    [['fw', 'a.bin\0']],
    [['fw', '%2e%2e', 'secret.txt']],
    [['fw', 'link.txt']],
    [['fw', 'missing.bin']],
    [['fw']],
  ])('does not serve %j', async (segments) => {
    const m = await ask(get(segments));
    expect(m.code).toBe(Code.NOT_FOUND);
    expect(m.payload.toString()).not.toContain('do not serve');
  });

  it('is read-only', async () => {
    expect((await ask(get(['fw', 'a.bin'], [], Code.PUT))).code).toBe(Code.METHOD_NOT_ALLOWED);
    expect((await ask(get(['fw', 'a.bin'], [], Code.DELETE))).code).toBe(Code.METHOD_NOT_ALLOWED);
  });

  it('lists files at /.well-known/core', async () => {
    const m = await ask(get(['.well-known', 'core']));
    expect(m.code).toBe(Code.CONTENT);
    expect(m.uint(Option.CONTENT_FORMAT)).toBe(40);
    expect(m.payload.toString()).toContain('</fw/a.bin>;ct=42');
  });
});
