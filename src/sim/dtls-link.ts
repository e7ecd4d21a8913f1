/**
 * DTLS links for the simulator: each device runs a DTLS 1.2 PSK handshake (cellgate's own DTLS client, on
 * the device's UDP socket) with its id as the PSK identity, and offers a Connection ID (RFC 9146) so that its
 * session survives coming back from a new source port. When the gateway grants no CID, or the session ended
 * (the gateway restarted, the device's key changed), the device handshakes again, as a real one must.
 */
import { randomBytes } from 'node:crypto';
import { DtlsClientCore } from '../dtls/client.js';
import type { DeviceLink, LinkFactory } from './simulate.js';
import type { SimStats } from './stats.js';
import { UdpChannel } from './udp-channel.js';

/** First handshake retransmission: NB-IoT round trips are long; the core doubles it up to 8 tries. */
const RETRANSMIT_MS = 1000;

class DtlsLink implements DeviceLink {
  onDatagram: ((data: Buffer) => void) | undefined = undefined;
  private core: DtlsClientCore;

  constructor(
    private readonly channel: UdpChannel,
    private readonly identity: string,
    private readonly key: Buffer,
    private readonly stats: SimStats,
    private readonly retransmitMs: number,
  ) {
    this.core = this.newCore();
    channel.onDatagram = (d) => this.core.receive(d);
  }

  private newCore(): DtlsClientCore {
    const core = new DtlsClientCore(
      { identity: this.identity, key: this.key, cid: randomBytes(4), retransmitMs: this.retransmitMs },
      (datagram) => this.channel.send(datagram),
    );
    core.onData = (data) => this.onDatagram?.(data);
    return core;
  }

  async handshake(): Promise<void> {
    this.core.stop('closed');
    this.core = this.newCore();
    await this.core.handshake();
    this.stats.handshakes++;
  }

  /** Before an uplink: a session that ended (close_notify, failure) is replaced by a new handshake. */
  async prepare(): Promise<void> {
    if (this.core.phase !== 'connected') await this.handshake();
  }

  send(data: Buffer): void {
    if (this.core.phase === 'connected') this.core.write(data);
  }

  async rebind(): Promise<void> {
    await this.channel.rebind();
    // Without a Connection ID the server finds the session by address: from a new port it is gone.
    if (this.core.serverCid === '') await this.handshake();
  }

  async close(): Promise<void> {
    this.core.close();
    await this.channel.close();
  }
}

/** Devices speaking CoAP over DTLS with one PSK for the whole simulated fleet. */
export function dtlsLinks(
  address: string,
  port: number,
  key: Buffer,
  stats: SimStats,
  retransmitMs = RETRANSMIT_MS,
): LinkFactory {
  return {
    open: async (deviceId) => {
      const channel = await UdpChannel.open(address, port);
      const link = new DtlsLink(channel, deviceId, key, stats, retransmitMs);
      try {
        await link.handshake();
      } catch (err) {
        await channel.close();
        throw err;
      }
      return link;
    },
    query: () => [],
  };
}
