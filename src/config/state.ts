/**
 * The `state:` section: where state shared by replicas lives (DTLS sessions, downlink shadows and command
 * queues, deduplication), and the one Redis connection every shared store uses. Also folds the deprecated
 * `downlink.redis` keys into `state.redis` and makes the downlink stores follow `state.store`.
 */
import { z } from 'zod';

const REDIS_URL = /^rediss?:\/\/[^/\s]*(\/\d{0,2})?$/;

export const stateRedisSchema = z
  .strictObject({
    url: z
      .string()
      .regex(
        REDIS_URL,
        'a Redis URL is redis://[user:password@]host:port[/db] or rediss://… for TLS (no other path or spaces)',
      )
      .default('redis://127.0.0.1:6379')
      .describe(
        'Redis / Valkey URL: redis:// or rediss:// (TLS); user and password may be in the URL (or the password in `passwordFile`). With `cluster: true`, any node of the cluster.',
      ),
    passwordFile: z
      .string()
      .default('')
      .describe(
        'File holding the Redis password (e.g. a mounted Kubernetes Secret); trailing newlines are ignored. Overrides a password in the URL.',
      ),
    keyPrefix: z
      .string()
      .regex(/^[^{}\s]{0,64}$/, 'a key prefix is up to 64 characters without braces or spaces')
      .default('cellgate:')
      .describe(
        'Prefix of every Redis key and channel cellgate uses (several gateways can share one Redis).',
      ),
    cluster: z
      .boolean()
      .default(false)
      .describe(
        'Redis Cluster / ElastiCache cluster mode: discover the nodes from `url` and route by key slot (every key is hash-tagged per session or device).',
      ),
    commandTimeoutMs: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(1000)
      .describe(
        'Time-out of one Redis command; a call that takes longer fails (counted in cellgate_state_store_errors_total).',
      ),
    connectTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(5000)
      .describe('Time-out of one connection attempt; the client reconnects with a growing back-off (≤ 2 s).'),
    tlsCaFile: z
      .string()
      .default('')
      .describe(
        'PEM file of the CA that signed the Redis server certificate (rediss:// with a private CA); empty: the system CAs.',
      ),
  })
  .prefault({});

export const stateSchema = z
  .strictObject({
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe(
        'Where shared state lives: `memory` (this process only: one replica) or `redis` (shared by every replica: DTLS sessions, downlink shadows and command queues, deduplication).',
      ),
    redis: stateRedisSchema,
    encryptionKeyFile: z
      .string()
      .default('')
      .describe(
        'Required with `store: redis`: keyring file of AES-256 keys that seal DTLS session secrets in the store (one `<id>:<key>` per line, current key first; a key is 32 bytes as 64 hex or 44 base64 characters; a file with one bare key is key id 0). See docs/dtls.md, "Session sharing".',
      ),
  })
  .superRefine((s, ctx) => {
    if (s.store === 'redis' && s.encryptionKeyFile === '')
      ctx.addIssue({
        code: 'custom',
        path: ['encryptionKeyFile'],
        message:
          'required with state.store: redis — a file with the AES-256 key that seals session secrets (e.g. `openssl rand -base64 32 > state.key`)',
      });
  })
  .describe(
    'Shared state: `memory` for one process, `redis` for a fleet of replicas (see docs/operations.md, "Running a fleet").',
  )
  .prefault({});

/** The deprecated `downlink.redis` keys, still read (into `state.redis`) with a warning at start. */
export const deprecatedDownlinkRedisSchema = z
  .strictObject({
    url: z.string().optional().describe('Deprecated: use `state.redis.url`.'),
    keyPrefix: z.string().optional().describe('Deprecated: use `state.redis.keyPrefix`.'),
    commandTimeoutMs: z
      .number()
      .int()
      .min(50)
      .optional()
      .describe('Deprecated: use `state.redis.commandTimeoutMs`.'),
  })
  .optional()
  .describe('Deprecated: read into `state.redis` (keys set there win); the gateway logs a warning at start.');

export type StateConfig = z.infer<typeof stateSchema>;
export type StateRedisConfig = z.infer<typeof stateRedisSchema>;

const FOLDED = ['url', 'keyPrefix', 'commandTimeoutMs'] as const;

type Raw = Record<string, unknown>;

function isMap(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `raw.a.b` as a map, copying every level so the caller's object is never changed; undefined if not a map. */
function child(parent: Raw, key: string): Raw | undefined {
  const v = parent[key];
  if (v === undefined) return (parent[key] = {});
  if (!isMap(v)) return undefined;
  return (parent[key] = { ...v });
}

/**
 * Applied to the raw configuration before validation: `downlink.redis.{url,keyPrefix,commandTimeoutMs}` fill
 * the same keys of `state.redis` that are not set; with `state.store: redis` the downlink shadow source and
 * command store default to `redis`.
 */
export function foldStateInput(raw: unknown): unknown {
  if (!isMap(raw)) return raw;
  const out: Raw = { ...raw };
  const old = isMap(out.downlink) ? out.downlink.redis : undefined;
  const state = isMap(out.state) || out.state === undefined ? child(out, 'state') : undefined;
  if (state && isMap(old)) {
    const redis = child(state, 'redis');
    if (redis) for (const k of FOLDED) if (redis[k] === undefined && old[k] !== undefined) redis[k] = old[k];
  }
  if (state?.store === 'redis' && (isMap(out.downlink) || out.downlink === undefined)) {
    const downlink = child(out, 'downlink') as Raw;
    const shadow = child(downlink, 'shadow');
    if (shadow && shadow.source === undefined) shadow.source = 'redis';
    const commands = child(downlink, 'commands');
    if (commands && commands.store === undefined) commands.store = 'redis';
  }
  return out;
}

interface Folded {
  state: StateConfig;
  downlink: {
    shadow: { source: string };
    commands: { store: string };
    redis?: z.infer<typeof deprecatedDownlinkRedisSchema>;
  };
}

/** Cross-section rules: with `state.store: redis` nothing a replica shares may stay in one process. */
export function checkStateUse(c: Folded, ctx: z.core.$RefinementCtx): void {
  if (c.state.store !== 'redis') return;
  const why =
    'with state.store: redis every replica must see the same downlinks; use redis (or remove the key)';
  if (c.downlink.shadow.source === 'memory')
    ctx.addIssue({ code: 'custom', path: ['downlink', 'shadow', 'source'], message: `memory: ${why}` });
  if (c.downlink.commands.store === 'memory')
    ctx.addIssue({ code: 'custom', path: ['downlink', 'commands', 'store'], message: `memory: ${why}` });
}

/** Warnings for deprecated keys in use (logged once at start). */
export function stateDeprecations(c: Folded): string[] {
  const old = c.downlink.redis;
  if (!old) return [];
  const out: string[] = [];
  for (const k of FOLDED) {
    const v = old[k];
    if (v === undefined) continue;
    out.push(
      v === c.state.redis[k]
        ? `downlink.redis.${k} is deprecated and read as state.redis.${k}: move it there`
        : `downlink.redis.${k} is deprecated and ignored because state.redis.${k} is set: remove it`,
    );
  }
  return out;
}
