/**
 * DTLS handshakes and records per second in-process: real PSK handshakes (cookie exchange included) and
 * CoAP requests in records, client and server back to back on one core, no sockets. The server's share of
 * the time is measured too, so the server's own rate is printed next to the combined one.
 *
 *   npm run build && node dist/bench/dtls-handshakes.js [handshakes=20000] [records=200000] [suite=CCM_8|GCM|CCM]
 */
import { MemoryRegistry } from '../src/devices/memory-registry.js';
import { devices, InProcess } from './dtls-inprocess.js';

const handshakes = Number(process.argv[2] ?? 20_000);
const records = Number(process.argv[3] ?? 200_000);
const SUITES: Record<string, number> = { CCM_8: 0xc0a8, GCM: 0x00a8, CCM: 0xc0a4 };
const suite = SUITES[process.argv[4] ?? 'CCM_8'];
const SESSIONS = 200;

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1e6;
}

/** A CoAP CON POST with a 20-byte payload, as the load generators send. */
function request(mid: number): Buffer {
  const m = Buffer.alloc(4 + 4 + 2 + 1 + 20, 0x61);
  m.set([0x44, 0x02, mid >> 8, mid & 0xff, 1, 2, 3, 4, 0xb1, 0x74, 0xff]);
  return m;
}

async function main(): Promise<void> {
  const bench = new InProcess(
    { maxSessions: handshakes + SESSIONS },
    new MemoryRegistry(devices(handshakes + SESSIONS)),
  );
  const server = bench.server;
  const handshake = async (i: number): Promise<void> => {
    const c = bench.asClient(() => bench.client(i, { cid: Buffer.alloc(0), cipherSuites: [suite] }));
    await bench.asClient(() => c.handshake());
    c.stop('closed');
    bench.drop(i);
  };
  // Warm up the JIT.
  for (let i = 0; i < 500; i++) await handshake(handshakes + (i % SESSIONS));
  bench.time.reset();
  let cpu0 = process.cpuUsage();
  for (let i = 0; i < handshakes; i++) await handshake(i);
  let cpu = cpuSeconds(cpu0);
  let share = bench.time.serverShare;
  console.log(
    `dtls-handshakes: ${(handshakes / cpu).toFixed(0)} handshakes/s in-process (client and server), ` +
      `server alone ${(handshakes / (cpu * share)).toFixed(0)}/s (${((cpu * share * 1e6) / handshakes).toFixed(0)} us CPU each)`,
  );

  // Records: SESSIONS established sessions take turns sending a CoAP request; the server answers each.
  const clients = [];
  for (let i = 0; i < SESSIONS; i++) {
    const c = bench.asClient(() =>
      bench.client(handshakes + i, { cid: Buffer.alloc(0), cipherSuites: [suite] }),
    );
    await bench.asClient(() => c.handshake());
    clients.push(c);
  }
  const before = server.stats.recordsIn;
  bench.time.reset();
  cpu0 = process.cpuUsage();
  for (let i = 0; i < records; i++) {
    const c = clients[i % SESSIONS];
    bench.asClient(() => c.write(request(i & 0xffff)));
    if (c.received.length > 4) c.received.length = 0;
  }
  cpu = cpuSeconds(cpu0);
  share = bench.time.serverShare;
  const served = server.stats.recordsIn - before;
  if (served !== records) throw new Error(`only ${served} of ${records} records served`);
  console.log(
    `dtls-records: ${(records / cpu).toFixed(0)} CoAP exchanges/s in-process over ${SESSIONS} sessions (client and server), ` +
      `server alone ${(records / (cpu * share)).toFixed(0)}/s (${((cpu * share * 1e6) / records).toFixed(1)} us CPU per request and answer)`,
  );
  await server.close();
}

void main();
