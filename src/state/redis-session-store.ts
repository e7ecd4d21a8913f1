/**
 * The Redis session store. One string per session, `<prefix>dtls:{<session id hex>}`, a fixed 24-byte head
 * and the sealed session (about 140 bytes in all; a hash would cost three times as much, its sealed field
 * being too long for the compact encoding):
 *
 *     fence (u32)  1 when created, +1 on every take-over
 *     next (f64)   first write sequence number not yet leased (only grows)
 *     floor (f64)  replay floor: the highest client sequence number an owner accepted (as far as the store
 *                  knows)
 *     token (u32)  drawn by the replica that created the session: tells a Connection ID another replica
 *                  gave to another session (48 random bits collide rarely, but they can)
 *     sealed       the session, AES-256-GCM under the keyring, the session id as associated data
 *
 * The head is read and rewritten in place (GETRANGE / SETRANGE) by Lua scripts, so every change is atomic.
 * and one string per device, `<prefix>dtls:dev:{<device id>}` → its current session id and the tag of the
 * credential it was made with, to end the
 * sessions of a removed or re-keyed device and the one a new handshake replaces. Both expire after
 * `dtls.idleTimeoutMs` without a checkpoint. Every multi-step change is one Lua script on one key, so the
 * store works unchanged on Redis Cluster (every key hash-tagged by session or device). Revocations go out on
 * `<prefix>dtls:revoked` (pub/sub) as `<session id hex> <fence> <moved|ended>`.
 */
import type { Result } from 'ioredis';
import type { RedisConnection } from './redis.js';
import { encodeSession, decodeSession } from './session-codec.js';
import type { Keyring } from './sealing.js';
import {
  DEFAULT_BLOCK_SIZE,
  type ClaimRefusal,
  type Revocation,
  type SeqLease,
  type SessionClaim,
  type SessionStore,
  type SessionStoreOptions,
  type SharedSession,
} from './session-store.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    cellgateSessionCreate(
      key: string,
      sealed: Buffer,
      end: string,
      top: string,
      ttl: number,
      token: number,
    ): Result<number, Context>;
    cellgateSessionClaim(key: string, seq: string, block: number, ttl: number): Result<unknown, Context>;
    cellgateSessionClaimBuffer(
      key: string,
      seq: string,
      block: number,
      ttl: number,
    ): Result<unknown, Context>;
    cellgateSessionUnclaim(
      key: string,
      fence: number,
      fenceBefore: number,
      floorBefore: string,
    ): Result<number, Context>;
    cellgateSessionLease(key: string, fence: number, block: number, ttl: number): Result<number, Context>;
    cellgateSessionCheckpoint(key: string, fence: number, top: string, ttl: number): Result<number, Context>;
    cellgateDeleteIfEqual(key: string, value: string): Result<number, Context>;
    cellgateDeviceEnd(key: string, keep: string): Result<string | null, Context>;
  }
}

/**
 * The fixed head of a session value: fence (u32), next unleased write number and replay floor (doubles:
 * exact up to 2^53), and the creator's token (u32).
 */
const HEAD = `'>I4ddI4'`;

/**
 * The first unleased number after creation; -1 when another replica took the session over, -2 when the
 * Connection ID belongs to another session (made by another replica: the creator tokens differ).
 */
const CREATE = `
local h = redis.call('GETRANGE', KEYS[1], 0, 23)
if h ~= '' then
  local f, n, r, t = struct.unpack(${HEAD}, h)
  if t ~= tonumber(ARGV[5]) then return -2 end
  if f ~= 1 then return -1 end
  n = math.max(n, tonumber(ARGV[2]))
  redis.call('SETRANGE', KEYS[1], 0, struct.pack(${HEAD}, f, n, math.max(r, tonumber(ARGV[3])), t))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return n
end
local head = struct.pack(${HEAD}, 1, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5]))
redis.call('SET', KEYS[1], head .. ARGV[1], 'PX', ARGV[4])
return tonumber(ARGV[2])
`;

/** nil: unknown; 0: at or below the replay floor; else {sealed, fence, end of the new block, fence and floor before}. */
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local f, n, r, t = struct.unpack(${HEAD}, v)
local seq = tonumber(ARGV[1])
if seq <= r then return 0 end
n = n + tonumber(ARGV[2])
redis.call('SETRANGE', KEYS[1], 0, struct.pack(${HEAD}, f + 1, n, seq, t))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {string.sub(v, 25), f + 1, n, f, r}
`;

const UNCLAIM = `
local h = redis.call('GETRANGE', KEYS[1], 0, 23)
if h == '' then return 0 end
local f, n, r, t = struct.unpack(${HEAD}, h)
if f ~= tonumber(ARGV[1]) then return 0 end
redis.call('SETRANGE', KEYS[1], 0, struct.pack(${HEAD}, tonumber(ARGV[2]), n, tonumber(ARGV[3]), t))
return 1
`;

/** The end of the new block, or -1 when the fence is not the session's any more. */
const LEASE = `
local h = redis.call('GETRANGE', KEYS[1], 0, 23)
if h == '' then return -1 end
local f, n, r, t = struct.unpack(${HEAD}, h)
if f ~= tonumber(ARGV[1]) then return -1 end
n = n + tonumber(ARGV[2])
redis.call('SETRANGE', KEYS[1], 0, struct.pack(${HEAD}, f, n, r, t))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return n
`;

const CHECKPOINT = `
local h = redis.call('GETRANGE', KEYS[1], 0, 23)
if h == '' then return 0 end
local f, n, r, t = struct.unpack(${HEAD}, h)
if f ~= tonumber(ARGV[1]) then return 0 end
local top = tonumber(ARGV[2])
if top > r then redis.call('SETRANGE', KEYS[1], 0, struct.pack(${HEAD}, f, n, top, t)) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** Ends a device's entry unless its credential tag is ARGV[1]; returns the session id (hex) it named. */
const DEVICE_END = `
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local id, tag = string.match(v, '^(%x+) (%x+)$')
if tag == ARGV[1] then return nil end
redis.call('DEL', KEYS[1])
return id or v
`;

/** Deletes the device entry if it still names session ARGV[1]. */
const DELETE_IF_EQUAL = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** What a store call took and whether it failed, for the latency histogram and the error counter. */
export type StoreObserver = (op: string, seconds: number, failed: boolean) => void;

export interface RedisSessionStoreOptions extends SessionStoreOptions {
  /** Time-out of one store call (`state.redis.commandTimeoutMs`): also bounds a call queued while disconnected. */
  timeoutMs: number;
  observe?: StoreObserver;
}

/** A credential tag as 8 hex digits. */
function tag(credential: number): string {
  return (credential >>> 0).toString(16).padStart(8, '0');
}

function hex(id: string): string {
  return Buffer.from(id, 'latin1').toString('hex');
}

export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  readonly blockSize: number;
  private readonly ttl: number;
  private readonly channel: string;
  private readonly listeners: ((id: string, fence: number, why: Revocation) => void)[] = [];
  private listening: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keyring: Keyring,
    private readonly opts: RedisSessionStoreOptions,
  ) {
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.ttl = opts.idleTimeoutMs;
    this.channel = `${redis.prefix}dtls:revoked`;
    const c = redis.client;
    c.defineCommand('cellgateSessionCreate', { numberOfKeys: 1, lua: CREATE });
    c.defineCommand('cellgateSessionClaim', { numberOfKeys: 1, lua: CLAIM });
    c.defineCommand('cellgateSessionUnclaim', { numberOfKeys: 1, lua: UNCLAIM });
    c.defineCommand('cellgateSessionLease', { numberOfKeys: 1, lua: LEASE });
    c.defineCommand('cellgateSessionCheckpoint', { numberOfKeys: 1, lua: CHECKPOINT });
    c.defineCommand('cellgateDeleteIfEqual', { numberOfKeys: 1, lua: DELETE_IF_EQUAL });
    c.defineCommand('cellgateDeviceEnd', { numberOfKeys: 1, lua: DEVICE_END });
  }

  /** The hash of a session (exported for tests and the benchmark's MEMORY USAGE). */
  sessionKey(id: string): string {
    return `${this.redis.prefix}dtls:{${hex(id)}}`;
  }

  deviceKey(deviceId: string): string {
    return `${this.redis.prefix}dtls:dev:{${deviceId}}`;
  }

  /** Runs one store call with a deadline, and reports its latency and outcome. */
  private async call<T>(op: string, run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const pending = run();
      // Settled late (after the deadline): nothing waits for it any more.
      pending.catch(() => undefined);
      const result = await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`state store ${op} timed out after ${this.opts.timeoutMs} ms`)),
            this.opts.timeoutMs,
          );
        }),
      ]);
      this.opts.observe?.(op, (performance.now() - t0) / 1000, false);
      return result;
    } catch (err) {
      this.opts.observe?.(op, (performance.now() - t0) / 1000, true);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async create(
    s: SharedSession,
    writtenUpTo: number,
    acceptedTop: number,
    token: number,
  ): Promise<SeqLease | 'moved' | 'taken'> {
    const sealed = this.keyring.seal(encodeSession(s), Buffer.from(s.id, 'latin1'));
    const end = await this.call('create', () =>
      this.redis.client.cellgateSessionCreate(
        this.sessionKey(s.id),
        sealed,
        String(writtenUpTo + this.blockSize),
        String(acceptedTop),
        this.ttl,
        token,
      ),
    );
    if (end === -1) return 'moved';
    if (end === -2) return 'taken';
    const idHex = hex(s.id);
    const before = await this.call('create', async () => {
      const c = this.redis.client;
      const entry = `${idHex} ${tag(s.credential)}`;
      return (await c.set(this.deviceKey(s.deviceId), entry, 'PX', this.ttl, 'GET')) as string | null;
    });
    const beforeId = before?.split(' ')[0];
    if (beforeId && beforeId !== idHex) await this.end(Buffer.from(beforeId, 'hex').toString('latin1'));
    return { fence: 1, start: 0, end };
  }

  async claim(id: string, seq: number): Promise<SessionClaim | ClaimRefusal> {
    const reply = await this.call('claim', () =>
      this.redis.client.cellgateSessionClaimBuffer(
        this.sessionKey(id),
        String(seq),
        this.blockSize,
        this.ttl,
      ),
    );
    if (reply === null || reply === undefined) return 'unknown';
    if (!Array.isArray(reply)) return 'replay';
    const [sealed, fence, end, fenceBefore, floorBefore] = reply as [Buffer, number, number, number, number];
    const plain = this.keyring.open(sealed, Buffer.from(id, 'latin1'));
    const session = plain && decodeSession(id, plain);
    const claim: SessionClaim = {
      session: session as SharedSession,
      lease: { fence, start: end - this.blockSize, end },
      undo: { fence: fenceBefore, floor: floorBefore },
    };
    if (!session) {
      // Sealed under a key this replica does not have (rotation half-done) or damaged: not usable here.
      await this.unclaim(id, claim);
      throw new Error('stored session does not open with the keyring (state.encryptionKeyFile)');
    }
    return claim;
  }

  async unclaim(id: string, claim: SessionClaim): Promise<void> {
    await this.call('unclaim', () =>
      this.redis.client.cellgateSessionUnclaim(
        this.sessionKey(id),
        claim.lease.fence,
        claim.undo.fence,
        String(claim.undo.floor),
      ),
    );
  }

  announce(id: string, fence: number): void {
    this.publish(id, fence, 'moved');
  }

  private publish(id: string, fence: number, why: Revocation): void {
    this.redis.client.publish(this.channel, `${hex(id)} ${fence} ${why}`).catch(() => undefined);
  }

  async lease(id: string, fence: number): Promise<SeqLease | undefined> {
    const end = await this.call('lease', () =>
      this.redis.client.cellgateSessionLease(this.sessionKey(id), fence, this.blockSize, this.ttl),
    );
    return end < 0 ? undefined : { fence, start: end - this.blockSize, end };
  }

  async checkpoint(id: string, deviceId: string, fence: number, acceptedTop: number): Promise<boolean> {
    const c = this.redis.client;
    const [ok] = await this.call('checkpoint', () =>
      Promise.all([
        c.cellgateSessionCheckpoint(this.sessionKey(id), fence, String(acceptedTop), this.ttl),
        c.pexpire(this.deviceKey(deviceId), this.ttl),
      ]),
    );
    return ok === 1;
  }

  private async end(id: string): Promise<void> {
    await this.call('remove', () => this.redis.client.del(this.sessionKey(id)));
    this.publish(id, 0, 'ended');
  }

  async remove(id: string, deviceId: string): Promise<void> {
    await this.end(id);
    await this.call('remove', () =>
      this.redis.client.cellgateDeleteIfEqual(this.deviceKey(deviceId), hex(id)),
    );
  }

  async removeDevice(deviceId: string, keep?: number): Promise<void> {
    const idHex = await this.call('remove', () =>
      this.redis.client.cellgateDeviceEnd(this.deviceKey(deviceId), keep === undefined ? '' : tag(keep)),
    );
    if (idHex) await this.end(Buffer.from(idHex, 'hex').toString('latin1'));
  }

  onRevoked(listener: (id: string, fence: number, why: Revocation) => void): void {
    this.listeners.push(listener);
    this.listening ??= this.redis.listen(this.channel, (message) => {
      const [idHex, fence, why] = message.split(' ');
      if (!idHex || (why !== 'moved' && why !== 'ended')) return;
      const id = Buffer.from(idHex, 'hex').toString('latin1');
      for (const l of this.listeners) l(id, Number(fence), why);
    });
  }

  /** Settles once revocations are heard (at once when nothing listens). */
  get subscribed(): Promise<void> {
    return this.listening ?? Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
