/** Binds the DTLS UDP socket and feeds a DtlsServer with every datagram. */
import type { RemoteInfo, Socket } from 'node:dgram';
import { socketErrorLog } from '../../ops/socket-errors.js';
import { bindUdp } from '../../transport/udp.js';
import { DtlsServer, type DtlsServerOptions } from './server.js';

export interface DtlsListenerOptions extends Omit<DtlsServerOptions, 'send'> {
  /** Address to bind (`coap.bind`). */
  bind: string;
  /** UDP port (`coap.dtlsPort`); 0 binds an ephemeral port. */
  port: number;
  /** Receive and send buffer size requested from the kernel (`coap.socketBufferBytes`). */
  socketBufferBytes: number;
}

export interface DtlsListener {
  readonly server: DtlsServer;
  /** The port actually bound. */
  readonly port: number;
  readonly socket: Socket;
  /** Errors the socket reported (each logged at most once a minute); the listener keeps running. */
  readonly socketErrors: number;
  /** Sends close_notify to every session, then closes the socket once they have left. */
  close(): Promise<void>;
}

export async function createDtlsListener(opts: DtlsListenerOptions): Promise<DtlsListener> {
  const socket = await bindUdp({ bind: opts.bind, port: opts.port, bufferBytes: opts.socketBufferBytes });
  // Node sends a datagram on a later tick: closing the socket right after the close_notify alerts are
  // queued would drop them. While closing, sends are counted and the socket closes once the last has left.
  let closing: { pending: number; drained(): void } | undefined;
  const sent = (): void => {
    if (closing && --closing.pending === 0) closing.drained();
  };
  let server: DtlsServer;
  try {
    server = new DtlsServer({
      ...opts,
      send: (datagram, port, address) => {
        if (closing) {
          socket.send(datagram, port, address, sent);
          closing.pending++; // after the send: one that throws never calls back
        } else {
          socket.send(datagram, port, address);
        }
      },
    });
  } catch (err) {
    // Unreadable certificate files, say: release the port before the start fails.
    socket.close();
    throw err;
  }
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => server.receive(msg, rinfo.address, rinfo.port));
  let socketErrors = 0;
  const logError = socketErrorLog(opts.log, 'dtls');
  socket.on('error', (err) => {
    socketErrors++;
    logError(err);
  });
  return {
    server,
    port: socket.address().port,
    socket,
    get socketErrors() {
      return socketErrors;
    },
    async close() {
      await new Promise<void>((drained) => {
        closing = { pending: 1, drained };
        void server.close().finally(sent);
      });
      await new Promise<void>((done) => socket.close(() => done()));
    },
  };
}
