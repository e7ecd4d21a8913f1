/**
 * Resident memory per idle DTLS session. Runs real handshakes in-process (cookie exchange included), one
 * CoAP exchange per session, then measures how much the heap and the process grew per session once the
 * clients are gone and the sessions sit idle. With `rpk` the handshakes are ECDHE-ECDSA with a raw public key
 * per device (a certificate session keeps what a raw-public-key one keeps: keys, device, credential kind and
 * fingerprint), else PSK.
 *
 *   npm run build && node dist/bench/dtls-sessions.js [sessions=100000] [connectionIdLength=6] [psk|rpk]
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { TestPki } from '../test/support/certificates.js';
import type { Device } from '../src/devices/device.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryRegistry } from '../src/devices/memory-registry.js';
import { devices, InProcess } from './dtls-inprocess.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const sessions = Number(process.argv[2] ?? 100_000);
const cidLength = Number(process.argv[3] ?? 6);
const rpk = process.argv[4] === 'rpk';
/**
 * Sessions made before the measurement. A certificate handshake allocates more native memory in passing
 * (OpenSSL key and signature objects) than a PSK one, which the allocator keeps once freed: as many warm-up
 * handshakes as measured ones bring it to its high-water mark first, so what is measured is what the
 * sessions keep.
 */
const WARMUP = rpk ? Math.max(2000, sessions) : 2000;

interface Usage {
  heap: number;
  rss: number;
}

function usage(): Usage {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

const request = Buffer.from([0x44, 0x02, 0x12, 0x34, 1, 2, 3, 4, 0xb1, 0x74, 0xff, 0x2a]);

/** Raw public keys of the devices (rpk mode). */
const keys: KeyObject[] = [];

function rpkDevices(n: number): Device[] {
  return Array.from({ length: n }, (_, i) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    keys.push(privateKey);
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    return {
      id: `dev${i}`,
      thing: `dev${i}`,
      ips: [],
      rpk: { fingerprint: createHash('sha256').update(spki).digest('hex') },
    };
  });
}

async function establish(bench: InProcess, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const c = bench.client(i, {
      cid: cidLength > 0 ? Buffer.alloc(0) : undefined,
      ...(rpk ? { cipherSuites: [0xc0ae], certificate: { key: keys[i] } } : {}),
    });
    await c.handshake();
    c.write(request);
    if (c.received.length !== 1) throw new Error(`session ${i}: no answer`);
    c.stop('closed');
    bench.drop(i);
  }
}

async function main(): Promise<void> {
  const pki = rpk ? new TestPki() : undefined;
  const server = pki?.server();
  const registry = new MemoryRegistry(rpk ? rpkDevices(WARMUP + sessions) : devices(WARMUP + sessions));
  const bench = new InProcess(
    {
      maxSessions: WARMUP + sessions,
      connectionIdLength: cidLength,
      certificate: server && { certFile: server.certFile, keyFile: server.keyFile },
    },
    registry,
  );
  pki?.close();
  await establish(bench, 0, WARMUP);
  const before = usage();
  const t0 = performance.now();
  await establish(bench, WARMUP, WARMUP + sessions);
  const seconds = (performance.now() - t0) / 1000;
  const after = usage();
  if (bench.server.sessionCount !== WARMUP + sessions) throw new Error('sessions missing');
  const heap = (after.heap - before.heap) / sessions;
  const rss = (after.rss - before.rss) / sessions;
  console.log(
    `dtls-sessions: ${sessions} idle ${rpk ? 'certificate (ECDHE-ECDSA, raw public key)' : 'PSK'} sessions (CID ${cidLength} bytes): ` +
      `heap+external ${heap.toFixed(0)} B/session, resident ${rss.toFixed(0)} B/session ` +
      `(${(sessions / seconds).toFixed(0)} in-process handshakes/s, client and server on one core)`,
  );
  await bench.server.close();
}

void main();
