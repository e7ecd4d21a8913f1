/**
 * An uplink starts the read of its thing's pending downlink as soon as its device is known, so a cold read
 * (a store round trip, as after a session moved to this replica) overlaps the publish instead of following it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ShadowSource } from '../../src/downlink/shadow-source.js';
import { jsonUplink } from '../support/downlink.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

describe('downlink prefetch', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  it('reads the pending downlink while the uplink is still being published', async () => {
    gw = await startTestGateway();
    gw.recorder.delayMs = 150;
    const shadows = gw.downlinks!.shadows as ShadowSource;
    const get = shadows.get.bind(shadows);
    const publishedWhenRead: number[] = [];
    shadows.get = (thing) => {
      publishedWhenRead.push(gw!.recorder.messages.length);
      return get(thing);
    };
    const first = await jsonUplink(gw.coapPort, 'telemetry?id=dev-1');
    expect(first.doc).toBeUndefined();
    // One read for the uplink, begun before the publisher accepted it, and the reply joined that read.
    expect(publishedWhenRead).toEqual([0]);
    expect(gw.recorder.messages.length).toBe(1);
  });

  it('reads nothing ahead for an uplink that asks for no 2.xx response (No-Response)', async () => {
    gw = await startTestGateway();
    const shadows = gw.downlinks!.shadows as ShadowSource;
    const get = shadows.get.bind(shadows);
    let reads = 0;
    shadows.get = (thing) => {
      reads++;
      return get(thing);
    };
    const { coapExchange } = await import('../support/libcoap.js');
    // No-Response 2 (RFC 7967): suppress 2.xx answers.
    await coapExchange(
      'coap-client-notls',
      ['-m', 'post', '-e', 'x', '-N', '-O', '258,2', '-B', '1'],
      `coap://127.0.0.1:${gw.coapPort}/telemetry?id=dev-1`,
    );
    await gw.recorder.waitFor(1);
    expect(reads).toBe(0);
  });
});
