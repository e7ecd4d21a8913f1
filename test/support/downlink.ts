/** An uplink from libcoap's coap-client-notls asking for JSON, and the downlink its 2.04 carried. */
import { expect } from 'vitest';
import type { DownlinkDocument } from '../../src/downlink/document.js';
import { coapExchange } from './libcoap.js';

export async function jsonUplink(
  port: number,
  path: string,
  extra: string[] = [],
): Promise<{ doc: DownlinkDocument | undefined; etag: string | undefined }> {
  const r = await coapExchange(
    'coap-client-notls',
    ['-m', 'post', '-e', 'x', '-A', '50', ...extra],
    `coap://127.0.0.1:${port}/${path}`,
  );
  expect(r.code, r.output).toBe(0);
  const res = r.responses[0];
  expect(res?.code, r.output).toBe('2.04');
  return {
    doc: r.body.length ? (JSON.parse(r.body.toString()) as DownlinkDocument) : undefined,
    etag: res.options.get('ETag')?.[0],
  };
}
