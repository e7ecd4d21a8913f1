/**
 * The floor of any Node UDP server: a bare `dgram` socket that turns each CoAP CON into an empty-bodied 2.04
 * ACK (same Message ID and token) and does nothing else. The `dtls` scenario drives it with 200 and 10,000
 * clients to show how much of a slowdown with many peers comes from the kernel and libuv alone.
 *
 *   node dist/bench/udp-ack-server.js PORT [RECEIVE_BUFFER_BYTES=4194304]
 */
import { createSocket } from 'node:dgram';

const port = Number(process.argv[2]);
const bufferBytes = Number(process.argv[3] ?? 4 * 1024 * 1024);
const socket = createSocket('udp4');
socket.on('message', (m, r) => {
  if (m.length < 4) return;
  const tkl = m[0] & 15;
  const ack = Buffer.allocUnsafe(4 + tkl);
  ack[0] = 0x60 | tkl;
  ack[1] = 0x44;
  ack[2] = m[2];
  ack[3] = m[3];
  m.copy(ack, 4, 4, 4 + tkl);
  socket.send(ack, r.port, r.address);
});
socket.bind(port, '127.0.0.1', () => {
  socket.setRecvBufferSize(bufferBytes);
  socket.setSendBufferSize(bufferBytes);
});
