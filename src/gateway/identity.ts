/**
 * Who sent a request. DTLS: the device behind the PSK identity the session authenticated. NoSec: the device
 * named by Uri-Query `id=<deviceId>`, or the device listed with the request's source IP (private-APN fleets
 * with static addressing). A device provisioned with a PSK must use DTLS: a NoSec request naming it is refused.
 */
import type { Device } from '../devices/device.js';
import type { DeviceRegistry } from '../devices/registry.js';
import { queryValue, type Exchange } from '../coap/exchange.js';
import { plainAddress } from '../transport/udp.js';

export interface IdentityOptions {
  queryKey: string;
  byAddress: boolean;
}

/** The device that sent a request, or why it is not accepted. */
export function identify(ex: Exchange, registry: DeviceRegistry, opts: IdentityOptions): Device | string {
  const peer = ex.peer;
  const claimed = queryValue(ex.query, opts.queryKey);
  if (peer.deviceId !== undefined) {
    const device = registry.get(peer.deviceId);
    if (!device) return 'Unknown device';
    if (claimed !== undefined && claimed !== device.id) return 'Device id does not match the DTLS identity';
    return device;
  }
  let device: Device | undefined;
  if (claimed !== undefined) device = registry.get(claimed);
  else if (opts.byAddress) device = registry.byAddress(plainAddress(peer.address));
  if (!device) return claimed === undefined ? 'Device not identified (add ?id=<deviceId>)' : 'Unknown device';
  if (device.psk) return 'This device must use DTLS';
  return device;
}
