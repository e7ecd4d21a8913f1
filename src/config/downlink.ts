/** The `downlink` section: shadow source, command queue and per-thing cache (Redis settings: `state.redis`). */
import { z } from 'zod';
import { deprecatedDownlinkRedisSchema } from './state.js';

const MB = 1024 * 1024;

const memoryCaps = (what: string) =>
  z
    .strictObject({
      maxThings: z
        .number()
        .int()
        .min(1)
        .default(100_000)
        .describe(`Cap on things with ${what} held in memory; past it, new ones are refused.`),
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(64 * MB)
        .describe(`Cap on bytes of ${what} held in memory; past it, writes are refused.`),
    })
    .prefault({});

export const downlinkSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Attach pending downlinks (desired state, commands) to uplink responses and serve GET /shadow.',
      ),
    shadow: z
      .strictObject({
        source: z
          .enum(['memory', 'redis', 'aws-iot'])
          .default('memory')
          .describe(
            'Where desired state lives: in this process, in Redis (`state.redis`, shared by replicas) or in AWS IoT Device Shadow. Default: `redis` when `state.store` is redis, else `memory`.',
          ),
        name: z
          .string()
          .regex(/^[a-zA-Z0-9:_-]{1,64}$/, 'a shadow name is 1-64 of a-z A-Z 0-9 : _ -')
          .default('downlink')
          .describe('Named shadow holding each thing’s desired state.'),
        maxDocumentBytes: z
          .number()
          .int()
          .min(256)
          .max(64 * 1024)
          .default(8 * 1024)
          .describe(
            'Largest shadow state (desired + reported) the memory and redis sources accept (AWS: 8 KB).',
          ),
        memory: memoryCaps('shadows'),
        aws: z
          .strictObject({
            endpoint: z
              .string()
              .default('')
              .describe(
                'IoT Data Plane endpoint (host or URL); empty: AWS_ENDPOINT_URL_IOT_DATA_PLANE or the SDK default.',
              ),
            region: z.string().default('').describe('AWS region; empty: from the endpoint or AWS_REGION.'),
            maxRequestsPerSecondPerThing: z
              .number()
              .min(0.1)
              .max(20)
              .default(10)
              .describe('Shadow requests per second per thing this gateway allows itself (AWS quota: 20).'),
            timeoutMs: z.number().int().min(100).default(3000).describe('Time-out of one shadow request.'),
            maxAttempts: z
              .number()
              .int()
              .min(1)
              .max(10)
              .default(3)
              .describe('Attempts per shadow request (the SDK retries throttling and server errors).'),
          })
          .prefault({}),
      })
      .prefault({}),
    commands: z
      .strictObject({
        store: z
          .enum(['memory', 'redis'])
          .default('memory')
          .describe(
            'Where command queues live: in this process or in Redis (`state.redis`, shared by replicas). Default: `redis` when `state.store` is redis, else `memory`.',
          ),
        maxPerResponse: z
          .number()
          .int()
          .min(1)
          .max(127)
          .default(4)
          .describe('Commands attached to one response at most (the rest follow on later uplinks).'),
        defaultTtlSeconds: z
          .number()
          .int()
          .min(1)
          .default(24 * 3600)
          .describe('Time-to-live of a command queued without `ttlSeconds`.'),
        maxTtlSeconds: z
          .number()
          .int()
          .min(1)
          .default(30 * 24 * 3600)
          .describe('Longest time-to-live a command may ask for.'),
        maxQueuedPerThing: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(32)
          .describe('Cap on undelivered commands per thing; past it, enqueueing is refused (429).'),
        maxCommandBytes: z
          .number()
          .int()
          .min(16)
          .max(64 * 1024)
          .default(1024)
          .describe('Largest command `data` (as JSON).'),
        retentionSeconds: z
          .number()
          .int()
          .min(0)
          .default(3600)
          .describe('How long delivered and expired commands stay listable.'),
        memory: memoryCaps('commands'),
      })
      .prefault({}),
    cache: z
      .strictObject({
        ttlMs: z
          .number()
          .int()
          .min(0)
          .default(5000)
          .describe(
            'How long a thing’s pending downlink is reused before redis or aws-iot are asked again (changes made through this gateway or Redis apply at once; memory stores need no re-reads).',
          ),
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(100_000)
          .describe('Cap on things whose pending downlink is cached.'),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(32 * MB)
          .describe('Cap on bytes of cached downlinks.'),
      })
      .prefault({}),
    redis: deprecatedDownlinkRedisSchema,
  })
  .describe(
    'Downlinks piggybacked on uplink responses: desired state from a named device shadow and queued commands (see docs/downlinks.md).',
  )
  .prefault({});

export type DownlinkConfig = z.infer<typeof downlinkSchema>;
