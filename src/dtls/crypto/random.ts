/**
 * Random bytes for the handshake (server random, session keys, Connection IDs), drawn from a pool refilled
 * from the system CSPRNG 4 KiB at a time: one call into OpenSSL per hundred handshakes instead of several
 * per handshake.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(4096);
let offset = pool.length;

function take(n: number): Buffer {
  if (offset + n > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const view = pool.subarray(offset, offset + n);
  // Never hand out the same bytes twice.
  offset += n;
  return view;
}

/** `n` random bytes in a buffer of their own. */
export function random(n: number): Buffer {
  return Buffer.from(take(n));
}

/** `n` random bytes written as a string (e.g. base64url for identifiers, latin1 for Connection IDs). */
export function randomString(n: number, encoding: BufferEncoding): string {
  return take(n).toString(encoding);
}
