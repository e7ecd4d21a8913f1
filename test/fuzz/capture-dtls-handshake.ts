/**
 * Writes the captured flights of `test/fuzz/corpus/dtls-handshake/`: the datagrams the project's client sends
 * in one PSK handshake (TLS_PSK_WITH_AES_128_CCM_8, extended master secret, Connection IDs both ways) with the
 * in-process server, then a record of application data and its close_notify. The system random source is
 * replaced by a seeded generator first, so every run writes the same bytes:
 *
 *   node --import ./test/support/ts-register.mjs test/fuzz/capture-dtls-handshake.ts
 */
import crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { prng } from '../support/prng.js';
import { CORPUS_DIR } from './target.js';

const NAMES = ['hello', 'hello-with-cookie', 'flight-5', 'application-data', 'close-notify'];

const rand = prng(0x5eed);
const fill = <B extends NodeJS.ArrayBufferView>(buf: B): B => {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  return buf;
};
Object.assign(crypto, {
  randomFillSync: fill,
  randomBytes: (n: number) => fill(Buffer.alloc(n)),
});
syncBuiltinESMExports();

// Imported only now: their crypto imports see the seeded source.
const { DtlsHarness } = await import('../support/dtls-harness.js');
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const h = new DtlsHarness({ connectionIdLength: 2 });
const sent: Buffer[] = [];
h.drop = (dir, d) => {
  if (dir === 'to-server') sent.push(d);
  return false;
};
const c = h.client({ cid: Buffer.from([0xc1, 0xd2, 0xe3]), retransmitMs: 60_000 }, '10.0.0.1', 5000);
await c.handshake();
c.write(Buffer.from('hello'));
await settle();
c.close();
await settle();
await h.close();

sent.forEach((d, i) => {
  const hex = d.toString('hex').match(/.{1,64}/g) ?? [];
  const head = `# the project's DTLS client, PSK CCM_8 with Connection IDs (test/fuzz/capture-dtls-handshake.ts): datagram ${i}, ${NAMES[i]}`;
  writeFileSync(
    join(CORPUS_DIR, 'dtls-handshake', `client-${i}-${NAMES[i]}.hex`),
    [head, ...hex, ''].join('\n'),
  );
});
process.stdout.write(`${sent.length} datagrams written\n`);
