/**
 * The `redis` shadow source: shadows shared by every replica. One hash per thing
 * (`<prefix>shadow:{<thing>}:<name>`) holds the document as JSON and its version; an update reads it, applies
 * the change here and writes it back only if the version is still the one it read (compare-and-set in a Lua
 * script), retrying when another writer came first. Every change is announced on the change feed.
 */
import { ApiError } from '../state/api-error.js';
import type { Result } from 'ioredis';
import type { RedisConnection } from '../state/redis.js';
import {
  applyShadowUpdate,
  unixSeconds,
  type ShadowState,
  type ShadowUpdate,
  type UpdateAnswer,
} from './shadow-document.js';
import type { ShadowSource } from './shadow-source.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    cellgateShadowCas(key: string, expected: string, version: string, doc: string): Result<number, Context>;
  }
}

/** Writes `doc` (or deletes it when empty) and the version if the stored version is still `expected`. */
const CAS = `
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'doc')
  redis.call('HSET', KEYS[1], 'v', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3])
end
return 1`;

const MAX_CAS_ATTEMPTS = 16;

/** A short random pause before trying again, growing with the attempt, so concurrent writers spread out. */
function backoff(attempt: number): Promise<void> | undefined {
  if (attempt === 0) return undefined;
  return new Promise((r) => setTimeout(r, Math.random() * 2 * Math.min(attempt, 8)));
}

export class RedisShadowSource implements ShadowSource {
  readonly kind = 'redis';

  constructor(
    private readonly redis: RedisConnection,
    private readonly name: string,
    private readonly maxDocumentBytes: number,
  ) {
    redis.client.defineCommand('cellgateShadowCas', { numberOfKeys: 1, lua: CAS });
  }

  private key(thing: string): string {
    return `${this.redis.prefix}shadow:{${thing}}:${this.name}`;
  }

  private async read(thing: string): Promise<{ version: number; state: ShadowState | undefined }> {
    const [v, doc] = await this.redis.client.hmget(this.key(thing), 'v', 'doc').catch(unavailable);
    return { version: v === null ? 0 : Number(v), state: doc ? (JSON.parse(doc) as ShadowState) : undefined };
  }

  async get(thing: string): Promise<ShadowState | undefined> {
    return (await this.read(thing)).state;
  }

  async update(thing: string, update: ShadowUpdate): Promise<UpdateAnswer> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      await backoff(attempt);
      const { version, state } = await this.read(thing);
      const { next, answer } = applyShadowUpdate(
        state,
        version,
        update,
        unixSeconds(),
        this.maxDocumentBytes,
      );
      const ok = await this.redis.client
        .cellgateShadowCas(this.key(thing), String(version), String(next.version), JSON.stringify(next))
        .catch(unavailable);
      if (ok === 1) {
        this.redis.publishChange(thing);
        return answer;
      }
    }
    throw new ApiError(409, 'ConflictException', 'Too many concurrent updates', update.clientToken);
  }

  async delete(thing: string): Promise<{ version: number; timestamp: number }> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      await backoff(attempt);
      const { version, state } = await this.read(thing);
      if (!state) throw new ApiError(404, 'ResourceNotFoundException', `No shadow exists for ${thing}`);
      const ok = await this.redis.client
        .cellgateShadowCas(this.key(thing), String(version), String(version), '')
        .catch(unavailable);
      if (ok === 1) {
        this.redis.publishChange(thing);
        return { version, timestamp: unixSeconds() };
      }
    }
    throw new ApiError(409, 'ConflictException', 'Too many concurrent updates');
  }

  onChange(listener: (thing: string) => void): void {
    this.redis.onChange(listener);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A Redis failure, as the admin API and the downlink layer see it. */
export function unavailable(err: unknown): never {
  throw new ApiError(503, 'ServiceUnavailableException', `Redis: ${(err as Error).message}`);
}
