/** UDP sockets for the CoAP and DTLS listeners. */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface UdpBinding {
  bind: string;
  port: number;
  /** Kernel receive and send buffer size to ask for. */
  bufferBytes: number;
}

/** Binds a UDP socket; `::` binds dual-stack. Resolves once listening. */
export function bindUdp(b: UdpBinding): Promise<Socket> {
  const socket = createSocket({ type: isIPv6(b.bind) ? 'udp6' : 'udp4', reuseAddr: false });
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.close();
      reject(new Error(`cannot bind UDP ${b.bind}:${b.port}: ${err.message}`, { cause: err }));
    };
    socket.once('error', onError);
    socket.bind({ address: b.bind, port: b.port }, () => {
      socket.off('error', onError);
      try {
        socket.setRecvBufferSize(b.bufferBytes);
        socket.setSendBufferSize(b.bufferBytes);
      } catch {
        // The kernel may cap buffer sizes (net.core.rmem_max); the defaults still work.
      }
      resolve(socket);
    });
  });
}

/** An IPv4 address seen through a dual-stack socket as `::ffff:a.b.c.d`, written plainly. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
