/**
 * A CoAP load generator: N simulated devices, each with its own UDP socket and one CON POST in flight at a
 * time (send, wait for the answer, send the next). Prints one JSON line with the exchange rate, latency
 * percentiles, losses and non-2.xx answers.
 *
 *   node dist/bench/coap-load.js --port 5683 --devices 100 --seconds 10 --payload 20 --path t --id-prefix dev
 *   (--accept 50 adds an Accept option)
 *
 * With --raw it drives a raw UDP listener instead: each datagram is the device id (8 bytes, ASCII, NUL-padded),
 * a 32-bit frame counter and the payload, and the answer is the acknowledgement frame `counter` (the counter
 * echoed), which the gateway sends once the uplink is published.
 *
 *   node dist/bench/coap-load.js --raw --port 5685 --devices 100 --seconds 10 --payload 20 --id-prefix dev
 *   (--counter-start N: the first frame counter is N + 1, so a second run is ahead of the first)
 */
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { LatencyHistogram } from './histogram.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '5683' },
    devices: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    requests: { type: 'string', default: '0' },
    payload: { type: 'string', default: '20' },
    path: { type: 'string', default: 't' },
    'id-prefix': { type: 'string', default: '' },
    'timeout-ms': { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '1' },
    accept: { type: 'string', default: '' },
    raw: { type: 'boolean', default: false },
    'counter-start': { type: 'string', default: '0' },
  },
});

const host = values.host as string;
const port = Number(values.port);
const devices = Number(values.devices);
const seconds = Number(values.seconds);
const maxRequests = Number(values.requests);
const payloadSize = Number(values.payload);
const timeoutMs = Number(values['timeout-ms']);
const warmupS = Number(values.warmup);

const accept = values.accept ? Number(values.accept) : undefined;
const raw = values.raw === true;

/** A raw UDP frame: id (8 bytes ASCII), 32-bit counter, payload. */
function rawFrame(id: string, payload: Buffer): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  b.write(id.slice(0, 8), 0, 'latin1');
  payload.copy(b, 12);
  return b;
}

function uplink(path: string, query: string | undefined, payload: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x44, 0x02, 0, 0, 0, 0, 0, 0])];
  let prev = 0;
  const opt = (num: number, value: Buffer) => {
    const delta = num - prev;
    prev = num;
    if (delta >= 13 || value.length >= 13) throw new Error('bench options are short');
    parts.push(Buffer.from([(delta << 4) | value.length]), value);
  };
  opt(11, Buffer.from(path));
  if (query) opt(15, Buffer.from(query));
  if (accept !== undefined) opt(17, accept === 0 ? Buffer.alloc(0) : Buffer.from([accept]));
  parts.push(Buffer.from([0xff]), payload);
  return Buffer.concat(parts);
}

interface Device {
  socket: Socket;
  datagram: Buffer;
  mid: number;
  sentAt: number;
}

const hist = new LatencyHistogram();
let ok = 0;
let errors = 0;
let lost = 0;
let sent = 0;
let measuring = false;
let stopping = false;
const payload = Buffer.alloc(payloadSize, 0x61);

function send(d: Device): void {
  if (stopping || (maxRequests > 0 && sent >= maxRequests)) return;
  if (raw) {
    d.mid = (d.mid + 1) >>> 0;
    d.datagram.writeUInt32BE(d.mid, 8);
  } else {
    d.mid = (d.mid + 1) & 0xffff;
    d.datagram[2] = d.mid >> 8;
    d.datagram[3] = d.mid & 0xff;
  }
  d.sentAt = performance.now();
  sent++;
  d.socket.send(d.datagram, port, host);
}

async function main(): Promise<void> {
  const all: Device[] = [];
  for (let i = 0; i < devices; i++) {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, () => r()));
    const prefix = values['id-prefix'] as string;
    const d: Device = {
      socket,
      datagram: raw
        ? rawFrame(`${prefix}${i}`, payload)
        : uplink(values.path as string, prefix ? `id=${prefix}${i}` : undefined, payload),
      mid: raw ? Number(values['counter-start']) : Math.floor(Math.random() * 65536),
      sentAt: 0,
    };
    if (!raw) d.datagram.writeUInt32BE(i, 4);
    socket.on('message', (m: Buffer) => {
      if (d.sentAt === 0) return;
      if (
        raw ? m.length !== 4 || m.readUInt32BE(0) !== d.mid : m.length < 4 || ((m[2] << 8) | m[3]) !== d.mid
      )
        return;
      const rtt = performance.now() - d.sentAt;
      d.sentAt = 0;
      if (measuring) {
        hist.record(rtt);
        if (raw || m[1] >> 5 === 2) ok++;
        else errors++;
      }
      send(d);
    });
    all.push(d);
  }
  const timeouts = setInterval(() => {
    const now = performance.now();
    for (const d of all) {
      if (d.sentAt !== 0 && now - d.sentAt > timeoutMs) {
        if (measuring) lost++;
        d.sentAt = 0;
        send(d);
      }
    }
  }, 50);
  for (const d of all) send(d);
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  const start = performance.now();
  const startSent = sent;
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      const elapsed = (performance.now() - start) / 1000;
      if (
        (maxRequests > 0 && sent >= maxRequests && hist.total + lost >= sent - startSent - devices) ||
        (maxRequests === 0 && elapsed >= seconds)
      ) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  measuring = false;
  stopping = true;
  const elapsed = (performance.now() - start) / 1000;
  clearInterval(timeouts);
  for (const d of all) d.socket.close();
  const result = {
    devices,
    seconds: Number(elapsed.toFixed(2)),
    exchanges: ok + errors,
    rate: Math.round((ok + errors) / elapsed),
    ok,
    errors,
    lost,
    p50ms: hist.quantile(0.5),
    p99ms: hist.quantile(0.99),
    maxms: Number(hist.max.toFixed(2)),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

void main();
