/**
 * The `redis` command store: queues shared by every replica. One hash per thing (`<prefix>cmd:{<thing>}`):
 * field `n` is the thing's last command id, field `c:<id>` one command packed as
 * `state|enqueuedAt|expiresAt|sentAt|finishedAt|attempts|data`. Every operation is one Lua script, so state
 * changes are atomic across replicas; each first expires overdue commands and drops finished ones past
 * retention. The hash expires with its last command plus the retention period.
 */
import { ApiError } from './api-error.js';
import type { Result } from 'ioredis';
import type { RedisConnection } from './redis.js';
import { type Command, type CommandLimits, type CommandState, type CommandStore } from './command-store.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    cellgateCmdEnqueue(key: string, ...args: (string | number)[]): Result<number[], Context>;
    cellgateCmdRead(key: string, ...args: (string | number)[]): Result<(string | number)[], Context>;
    cellgateCmdSent(key: string, ...args: (string | number)[]): Result<number, Context>;
    cellgateCmdDelivered(key: string, ...args: (string | number)[]): Result<number, Context>;
  }
}

/**
 * Shared prelude. ARGV[1] = now (ms), ARGV[2] = retention (ms), ARGV[3] = cap on finished commands.
 * `tidy()` returns the remaining commands ordered by id, and how many it expired.
 */
const PRELUDE = `
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])
local maxFinished = tonumber(ARGV[3])
local function parse(id, v)
  local st, enq, exp, sat, fin, att, data = string.match(v, '^(%a+)|(%d+)|(%d+)|(%d*)|(%d*)|(%d+)|(.*)$')
  return { id = id, st = st, enq = enq, exp = tonumber(exp), sat = sat, fin = fin, att = tonumber(att), data = data }
end
local function pack(c)
  return c.st .. '|' .. c.enq .. '|' .. string.format('%.0f', c.exp) .. '|' .. c.sat .. '|' .. c.fin .. '|'
    .. string.format('%.0f', c.att) .. '|' .. c.data
end
local function active(c) return c.st == 'queued' or c.st == 'sent' end
local function tidy()
  local all = redis.call('HGETALL', KEYS[1])
  local list = {}
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 'c:' then
      table.insert(list, parse(tonumber(string.sub(f, 3)), all[i + 1]))
    end
  end
  table.sort(list, function(a, b) return a.id < b.id end)
  local expired = 0
  local finished = 0
  for _, c in ipairs(list) do
    if active(c) and c.exp <= now then
      c.st = 'expired'
      c.fin = string.format('%.0f', c.exp)
      redis.call('HSET', KEYS[1], 'c:' .. c.id, pack(c))
      expired = expired + 1
    end
    if not active(c) then finished = finished + 1 end
  end
  local excess = finished - maxFinished
  local keep = {}
  for _, c in ipairs(list) do
    local drop = false
    if not active(c) then
      if excess > 0 then
        excess = excess - 1
        drop = true
      else
        drop = tonumber(c.fin) + retention <= now
      end
    end
    if drop then redis.call('HDEL', KEYS[1], 'c:' .. c.id) else table.insert(keep, c) end
  end
  return keep, expired
end
`;

/** ARGV[4] = ttl (ms), ARGV[5] = max active, ARGV[6] = data. Returns {id, expired}; id -1 when full. */
const ENQUEUE = `${PRELUDE}
local list, expired = tidy()
local n = 0
for _, c in ipairs(list) do if active(c) then n = n + 1 end end
if n >= tonumber(ARGV[5]) then return { -1, expired } end
local id = redis.call('HINCRBY', KEYS[1], 'n', 1)
-- A thing without a counter starts at the current Unix time (as firstCommandId does), so ids keep growing.
if id == 1 then
  id = math.floor(now / 1000)
  redis.call('HSET', KEYS[1], 'n', id)
end
local exp = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'c:' .. id,
  pack({ st = 'queued', enq = string.format('%.0f', now), exp = exp, sat = '', fin = '', att = 0, data = ARGV[6] }))
local keep = exp + retention - now
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return { id, expired }`;

/** ARGV[4] = 1 for active commands only. Returns {expired, id1, packed1, id2, packed2, …}. */
const READ = `${PRELUDE}
local list, expired = tidy()
local out = { expired }
for _, c in ipairs(list) do
  if ARGV[4] ~= '1' or active(c) then
    table.insert(out, c.id)
    table.insert(out, pack(c))
  end
end
return out`;

/** ARGV[4…] = ids offered. */
const SENT = `${PRELUDE}
local n = 0
for i = 4, #ARGV do
  local f = 'c:' .. ARGV[i]
  local v = redis.call('HGET', KEYS[1], f)
  if v then
    local c = parse(tonumber(ARGV[i]), v)
    if active(c) and c.exp > now then
      c.st = 'sent'
      c.sat = string.format('%.0f', now)
      c.att = c.att + 1
      redis.call('HSET', KEYS[1], f, pack(c))
      n = n + 1
    end
  end
end
return n`;

/** ARGV[4] = last id confirmed. Returns how many became delivered. */
const DELIVERED = `${PRELUDE}
local list = tidy()
local last = tonumber(ARGV[4])
local n = 0
for _, c in ipairs(list) do
  if c.id <= last and active(c) then
    c.st = 'delivered'
    c.fin = string.format('%.0f', now)
    redis.call('HSET', KEYS[1], 'c:' .. c.id, pack(c))
    n = n + 1
  end
end
return n`;

const PACKED = /^([a-z]+)\|(\d+)\|(\d+)\|(\d*)\|(\d*)\|(\d+)\|([\s\S]*)$/;

function unpack(id: number, packed: string): Command {
  const m = PACKED.exec(packed);
  if (!m) throw new ApiError(500, 'InternalFailureException', `malformed command ${id} in Redis`);
  const c: Command = {
    id,
    state: m[1] as CommandState,
    enqueuedAt: Number(m[2]),
    expiresAt: Number(m[3]),
    attempts: Number(m[6]),
    data: m[7],
  };
  if (m[4]) c.sentAt = Number(m[4]);
  if (m[5]) c.finishedAt = Number(m[5]);
  return c;
}

function unavailable(err: unknown): never {
  throw new ApiError(503, 'ServiceUnavailableException', `Redis: ${(err as Error).message}`);
}

export class RedisCommandStore implements CommandStore {
  readonly kind = 'redis';
  expiredCount = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly limits: CommandLimits,
  ) {
    const c = redis.client;
    c.defineCommand('cellgateCmdEnqueue', { numberOfKeys: 1, lua: ENQUEUE });
    c.defineCommand('cellgateCmdRead', { numberOfKeys: 1, lua: READ });
    c.defineCommand('cellgateCmdSent', { numberOfKeys: 1, lua: SENT });
    c.defineCommand('cellgateCmdDelivered', { numberOfKeys: 1, lua: DELIVERED });
  }

  private key(thing: string): string {
    return `${this.redis.prefix}cmd:{${thing}}`;
  }

  private common(now: number): (string | number)[] {
    return [now, this.limits.retentionMs, this.limits.maxQueuedPerThing];
  }

  async enqueue(thing: string, data: string, ttlMs: number, now: number): Promise<Command> {
    const [id, expired] = await this.redis.client
      .cellgateCmdEnqueue(this.key(thing), ...this.common(now), ttlMs, this.limits.maxQueuedPerThing, data)
      .catch(unavailable);
    this.expiredCount += expired;
    if (id < 0)
      throw new ApiError(
        429,
        'LimitExceededException',
        `The command queue of ${thing} is full (${this.limits.maxQueuedPerThing} undelivered commands)`,
      );
    this.redis.publishChange(thing);
    return { id, data, state: 'queued', enqueuedAt: now, expiresAt: now + ttlMs, attempts: 0 };
  }

  private async read(thing: string, now: number, activeOnly: boolean): Promise<Command[]> {
    const out = await this.redis.client
      .cellgateCmdRead(this.key(thing), ...this.common(now), activeOnly ? 1 : 0)
      .catch(unavailable);
    this.expiredCount += Number(out[0]);
    const list: Command[] = [];
    for (let i = 1; i < out.length; i += 2) list.push(unpack(Number(out[i]), String(out[i + 1])));
    return list;
  }

  pending(thing: string, now: number): Promise<Command[]> {
    return this.read(thing, now, true);
  }

  list(thing: string, now: number): Promise<Command[]> {
    return this.read(thing, now, false);
  }

  async markSent(thing: string, ids: readonly number[], now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.client.cellgateCmdSent(this.key(thing), ...this.common(now), ...ids).catch(unavailable);
  }

  async markDelivered(thing: string, lastId: number, now: number): Promise<number> {
    const n = await this.redis.client
      .cellgateCmdDelivered(this.key(thing), ...this.common(now), lastId)
      .catch(unavailable);
    if (n > 0) this.redis.publishChange(thing);
    return n;
  }

  onChange(listener: (thing: string) => void): void {
    this.redis.onChange(listener);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
