/**
 * The IP → SIM table in Redis, shared by replicas: `<prefix>{radius}:ip:<ip>` holds the session as JSON with the
 * TTL as its expiry; the sorted set `<prefix>{radius}:ips` indexes addresses by last update so the cap drops the
 * oldest. Writes and the cap are one Lua script each; every key carries the hash tag `{radius}`, so the
 * scripts touch one slot of a Redis Cluster.
 */
import type { RedisClient } from './redis.js';
import type { SimSession, SimTable } from './sim-table.js';

/** KEYS session, index; ARGV ip, json, ttlMs, now, maxEntries, keyPrefix → addresses evicted. */
const PUT = `
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[3]))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over <= 0 then return 0 end
local oldest = redis.call('ZPOPMIN', KEYS[2], over)
for i = 1, #oldest, 2 do redis.call('DEL', ARGV[6] .. oldest[i]) end
return over
`;

/** KEYS session, index; ARGV ip, sessionId ('' for any) → 1 when removed. */
const REMOVE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if ARGV[2] ~= '' then
  local ok, s = pcall(cjson.decode, v)
  if ok and s.sessionId and s.sessionId ~= ARGV[2] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

type SimCommands = RedisClient & {
  radiusSimPut(
    key: string,
    index: string,
    ip: string,
    json: string,
    ttlMs: number,
    now: number,
    max: number,
    keyPrefix: string,
  ): Promise<number>;
  radiusSimRemove(key: string, index: string, ip: string, sessionId: string): Promise<number>;
};

export class RedisSimTable implements SimTable {
  private readonly redis: SimCommands;
  private readonly index: string;
  private readonly keyPrefix: string;

  constructor(
    redis: RedisClient,
    prefix: string,
    private readonly maxEntries: number,
    private readonly onCap: (evicted: number) => void,
  ) {
    this.redis = redis as SimCommands;
    this.index = `${prefix}{radius}:ips`;
    this.keyPrefix = `${prefix}{radius}:ip:`;
    if (typeof this.redis.radiusSimPut !== 'function') {
      redis.defineCommand('radiusSimPut', { numberOfKeys: 2, lua: PUT });
      redis.defineCommand('radiusSimRemove', { numberOfKeys: 2, lua: REMOVE });
    }
  }

  async put(ip: string, session: SimSession, ttlMs: number): Promise<void> {
    const evicted = await this.redis.radiusSimPut(
      this.keyPrefix + ip,
      this.index,
      ip,
      JSON.stringify(session),
      ttlMs,
      Date.now(),
      this.maxEntries,
      this.keyPrefix,
    );
    if (evicted > 0) this.onCap(evicted);
  }

  async remove(ip: string, sessionId: string | undefined): Promise<boolean> {
    return (await this.redis.radiusSimRemove(this.keyPrefix + ip, this.index, ip, sessionId ?? '')) === 1;
  }

  async get(ip: string): Promise<SimSession | undefined> {
    const v = await this.redis.get(this.keyPrefix + ip);
    if (v === null) return undefined;
    try {
      return JSON.parse(v) as SimSession;
    } catch {
      return undefined;
    }
  }

  count(): Promise<number> {
    return this.redis.zcard(this.index);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
