/**
 * DTLS links for the simulator: each device runs a DTLS 1.2 PSK handshake (cellgate's own DTLS client, on
 * the device's UDP socket) with its id as the PSK identity, and offers a Connection ID (RFC 9146) so that its
 * session survives coming back from a new source port. When the gateway grants no CID, or the session ended
 * (the gateway restarted, the device's key changed), the device handshakes again, as a real one must.
 */
import { randomBytes } from 'node:crypto';
import { DtlsClientCore } from '../dtls/client.js';
import type { DeviceLink, LinkFactory } from './link.js';
import type { SimStats } from './stats.js';
import { UdpChannel } from './udp-channel.js';

/** First handshake retransmission: NB-IoT round trips are long; the core doubles it up to 8 tries. */
const RETRANSMIT_MS = 1000;

/** Why a handshake failed, as the summary counts it. */
export class HandshakeFailure extends Error {
  constructor(readonly reason: 'handshake-timeout' | 'handshake-refused' | 'unreachable') {
    super(reason);
  }
}

class DtlsLink implements DeviceLink {
  onDatagram: ((data: Buffer) => void) | undefined = undefined;
  onUnreachable: (() => void) | undefined = undefined;
  private core: DtlsClientCore;
  private unreachable = false;

  constructor(
    private readonly channel: UdpChannel,
    private readonly identity: string,
    private readonly key: Buffer,
    private readonly stats: SimStats,
    private readonly retransmitMs: number,
    private readonly handshakeTimeoutMs: number,
  ) {
    this.core = this.newCore();
    channel.onDatagram = (d) => this.core.receive(d);
    channel.onUnreachable = () => {
      this.unreachable = true;
      this.core.abort('unreachable');
      this.onUnreachable?.();
    };
  }

  private newCore(): DtlsClientCore {
    const core = new DtlsClientCore(
      { identity: this.identity, key: this.key, cid: randomBytes(4), retransmitMs: this.retransmitMs },
      (datagram) => this.channel.send(datagram),
    );
    core.onData = (data) => this.onDatagram?.(data);
    return core;
  }

  /** A handshake, given up after the handshake time-out; rejects with a HandshakeFailure saying why. */
  async handshake(): Promise<void> {
    this.core.stop('closed');
    const core = (this.core = this.newCore());
    this.unreachable = false;
    this.stats.handshaking++;
    const timer = setTimeout(() => core.abort('handshake timed out'), this.handshakeTimeoutMs);
    try {
      await core.handshake();
    } catch (err) {
      const message = (err as Error).message;
      throw new HandshakeFailure(
        this.unreachable
          ? 'unreachable'
          : /timed out/.test(message)
            ? 'handshake-timeout'
            : 'handshake-refused',
      );
    } finally {
      clearTimeout(timer);
      this.stats.handshaking--;
    }
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
  handshakeTimeoutMs = 30_000,
): LinkFactory {
  return {
    open: async (deviceId) => {
      const channel = await UdpChannel.open(address, port);
      const link = new DtlsLink(channel, deviceId, key, stats, retransmitMs, handshakeTimeoutMs);
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
