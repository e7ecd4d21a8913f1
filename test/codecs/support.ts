/** Helpers shared by the codec tests. */
import { fileURLToPath } from 'node:url';
import type { DownlinkContext, UplinkContext } from '../../src/codecs/codec.js';
import type { CodecSpec } from '../../src/config/codecs.js';
import type { Device } from '../../src/devices/device.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));

/** A fixed reception time: 2023-11-14T22:13:20Z. */
export const RECEIVED_AT = 1_700_000_000_000;

export function uplink(over: Partial<UplinkContext> = {}): UplinkContext {
  return {
    deviceId: 'dev-1',
    thing: 'dev-1',
    path: 'up',
    contentFormat: undefined,
    transport: 'coap',
    receivedAt: RECEIVED_AT,
    ...over,
  };
}

export function downlink(over: Partial<DownlinkContext> = {}): DownlinkContext {
  return { deviceId: 'dev-1', thing: 'dev-1', accept: undefined, ...over };
}

export function device(codec?: CodecSpec, paths?: Record<string, CodecSpec>, id = 'dev-1'): Device {
  return { id, thing: id, ips: [], codec, paths };
}

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}
