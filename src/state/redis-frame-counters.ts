/**
 * Frame counters in Redis, shared by replicas and kept across restarts: one string per device,
 * `<prefix>udp:fcnt:{<deviceId>}` = `<counter>:<hash>` (hash-tagged per device for Redis Cluster), without expiry (a counter that expired would re-open
 * replays). Judging and recording is one Lua script, so two replicas cannot both accept a counter.
 */
import type { RedisClient } from './redis.js';
import type { CounterRule } from '../udp/counter.js';
import { counterRecord, type CounterClaim, type FrameCounterStore } from './frame-counters.js';

/** KEYS[1] record; ARGV counter, hash, modulus, maxGap → {verdict, previous|false}. Mirrors judgeCounter. */
const CLAIM = `
local stored = redis.call('GET', KEYS[1])
local n = tonumber(ARGV[1])
local record = ARGV[1] .. ':' .. ARGV[2]
if not stored then
  redis.call('SET', KEYS[1], record)
  return {'new', false}
end
local sep = string.find(stored, ':', 1, true)
local last = tonumber(string.sub(stored, 1, sep - 1))
local modulus = tonumber(ARGV[3])
local ahead = (n - last) % modulus
if ahead == 0 then
  if string.sub(stored, sep + 1) == ARGV[2] then return {'duplicate', stored} end
  return {'replay', stored}
end
if ahead <= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[1], record)
  return {'new', stored}
end
if n < last and n <= tonumber(ARGV[4]) and last - n > tonumber(ARGV[4]) then return {'reset', stored} end
if modulus - ahead < modulus / 2 then return {'replay', stored} end
return {'gap', stored}
`;

/** KEYS[1] record; ARGV ours, previous ('' for none): restores previous if the record is still ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`;

type CounterCommands = RedisClient & {
  udpCounterClaim(
    key: string,
    counter: number,
    hash: string,
    modulus: number,
    maxGap: number,
  ): Promise<[string, string | null]>;
  udpCounterRelease(key: string, ours: string, previous: string): Promise<number>;
};

export class RedisFrameCounters implements FrameCounterStore {
  private readonly redis: CounterCommands;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
  ) {
    this.redis = redis as CounterCommands;
    if (typeof this.redis.udpCounterClaim !== 'function') {
      redis.defineCommand('udpCounterClaim', { numberOfKeys: 1, lua: CLAIM });
      redis.defineCommand('udpCounterRelease', { numberOfKeys: 1, lua: RELEASE });
    }
  }

  private key(deviceId: string): string {
    return `${this.prefix}udp:fcnt:{${deviceId}}`;
  }

  async claim(deviceId: string, counter: number, hash: string, rule: CounterRule): Promise<CounterClaim> {
    const [verdict, previous] = await this.redis.udpCounterClaim(
      this.key(deviceId),
      counter,
      hash,
      2 ** rule.bits,
      rule.maxGap,
    );
    return { verdict: verdict as CounterClaim['verdict'], previous: previous ?? undefined };
  }

  async release(deviceId: string, counter: number, hash: string, previous: unknown): Promise<void> {
    const before = typeof previous === 'string' ? previous : '';
    await this.redis.udpCounterRelease(this.key(deviceId), counterRecord(counter, hash), before);
  }

  async get(deviceId: string): Promise<number | undefined> {
    const v = await this.redis.get(this.key(deviceId));
    return v === null ? undefined : Number(v.slice(0, v.indexOf(':')));
  }

  async reset(deviceId: string): Promise<boolean> {
    return (await this.redis.del(this.key(deviceId))) > 0;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
