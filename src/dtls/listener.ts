/** Binds the DTLS UDP socket and feeds a DtlsServer with every datagram. */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { DtlsServer, type DtlsServerOptions } from './server.js';

export interface DtlsListenerOptions extends Omit<DtlsServerOptions, 'send'> {
  /** Address to bind (`coap.bind`). */
  bind: string;
  /** UDP port (`coap.dtlsPort`); 0 binds an ephemeral port. */
  port: number;
  /** Receive and send buffer size requested from the kernel (`coap.socketBufferBytes`). */
  socketBufferBytes?: number;
}

export interface DtlsListener {
  readonly server: DtlsServer;
  /** The port actually bound. */
  readonly port: number;
  readonly socket: Socket;
  /** Sends close_notify to every session, then closes the socket. */
  close(): Promise<void>;
}

export function createDtlsListener(opts: DtlsListenerOptions): Promise<DtlsListener> {
  const socket = createSocket({ type: isIPv6(opts.bind) ? 'udp6' : 'udp4' });
  const server = new DtlsServer({
    ...opts,
    send: (datagram, port, address) => socket.send(datagram, port, address),
  });
  const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => server.receive(msg, rinfo.address, rinfo.port);
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      void server.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind(opts.port, opts.bind, () => {
      socket.off('error', onError);
      socket.on('error', (err) => opts.log.warn({ err: err.message }, 'DTLS socket error'));
      if (opts.socketBufferBytes) {
        try {
          socket.setRecvBufferSize(opts.socketBufferBytes);
          socket.setSendBufferSize(opts.socketBufferBytes);
        } catch (err) {
          opts.log.warn({ err: (err as Error).message }, 'cannot set the DTLS socket buffer sizes');
        }
      }
      socket.on('message', onMessage);
      const port = socket.address().port;
      opts.log.info({ address: opts.bind, port }, 'DTLS listening');
      resolve({
        server,
        port,
        socket,
        async close() {
          await server.close();
          await new Promise<void>((done) => socket.close(() => done()));
        },
      });
    });
  });
}
