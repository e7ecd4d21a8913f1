/** A Redis connection to the shared test Redis (127.0.0.1:6379) under a key prefix of its own. */
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../src/ops/logger.js';
import { RedisConnection } from '../../src/state/redis.js';

export const TEST_REDIS_URL = 'redis://127.0.0.1:6379';

/** A prefix no other test run uses. */
export function uniquePrefix(name: string): string {
  return `cellgate-test:${name}:${process.pid}-${randomBytes(4).toString('hex')}:`;
}

export function testRedis(prefix: string): RedisConnection {
  return new RedisConnection(
    { url: TEST_REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 2000 },
    silentLogger(),
  );
}

/** Deletes every key under the prefix. */
export async function dropPrefix(conn: RedisConnection, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await conn.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await conn.client.del(...keys);
  } while (cursor !== '0');
}
