/**
 * A simulated device's path to the gateway: a datagram channel that can come back from a new source port,
 * and the factory that opens one per device (NoSec sockets in simulate.ts, DTLS sessions in dtls-link.ts).
 */
import type { DatagramChannel } from './coap-client.js';

/** A device's path to the gateway. */
export interface DeviceLink extends DatagramChannel {
  /** Comes back from a new source port (a DTLS link keeps its session when it has a Connection ID). */
  rebind(): Promise<void>;
  /** Called before each uplink; a DTLS link whose session ended handshakes again. */
  prepare?(): Promise<void>;
  close(): Promise<void>;
}

export interface LinkFactory {
  /** Opens a device's link; a DTLS link completes its handshake first. */
  open(deviceId: string): Promise<DeviceLink>;
  /** Uri-Query entries naming the device (NoSec: `id=<deviceId>`; DTLS: none, the PSK identity names it). */
  query(deviceId: string): string[];
}
