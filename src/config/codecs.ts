/** The `codecs:` section: decode time limits, user plugin modules and the sandbox that runs scripts. */
import { z } from 'zod';

/** A codec named alone, or with options (a device's `codec`, a path's, raw UDP's `udp.codec`). */
export const codecSpecSchema = z.union([
  z.string().min(1),
  z.strictObject({ name: z.string().min(1), options: z.record(z.string(), z.unknown()).optional() }),
]);
export type CodecSpec = z.infer<typeof codecSpecSchema>;

/** Names the built-in codecs answer to; a plugin cannot take one of them. */
export const BUILTIN_CODEC_NAMES = ['raw', 'json', 'cbor', 'senml', 'protobuf', 'js'] as const;
export type BuiltinCodecName = (typeof BUILTIN_CODEC_NAMES)[number];

const PLUGIN_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

export const isolationSchema = z
  .enum(['worker', 'none'])
  .describe(
    '`worker`: the plugin runs in the sandbox worker threads (a hang or runaway memory cannot stop the gateway); ' +
      '`none`: in the gateway thread (fastest, for trusted plugins).',
  );

const pluginEntry = z.union([
  z.string().min(1),
  z.strictObject({
    module: z
      .string()
      .min(1)
      .describe(
        'Module path (`./`, `../` or `/`; relative to the config file) or package name exporting the plugin.',
      ),
    isolation: isolationSchema.default('worker'),
  }),
]);

export const sandboxSchema = z
  .strictObject({
    workers: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(1)
      .describe('Worker threads that run `js` scripts and isolated plugins (started on first use).'),
    maxHeapMb: z
      .number()
      .int()
      .min(16)
      .max(4096)
      .default(64)
      .describe(
        'JS heap limit of each sandbox worker (MiB). A script that exceeds it ends its worker; a new one starts.',
      ),
    callTimeoutMs: z
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(100)
      .describe(
        'Longest one synchronous call into a script or isolated plugin may run; its worker is ended after 75-100% ' +
          'of this, and the other messages it held go to the new worker.',
      ),
    batchDelayMs: z
      .number()
      .min(0)
      .max(100)
      .default(0)
      .describe(
        'How long a message may wait for others to share its batch to a worker. 0 (the default) sends what ' +
          'arrived in the same event-loop turn: under load those are many already, and a device waiting for ' +
          'its answer is not kept waiting for company. A longer wait makes batches larger at the cost of latency.',
      ),
    maxBatch: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(256)
      .describe('Most messages handed to a worker at once.'),
    maxQueue: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Cap on messages waiting for a worker; more fail at once with reason `overload`.'),
    maxQueueBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 1024 * 1024)
      .describe('Cap on payload bytes waiting for a worker.'),
    maxOutputBytes: z
      .number()
      .int()
      .min(256)
      .max(16 * 1024 * 1024)
      .default(64 * 1024)
      .describe('Largest decoded JSON a sandboxed codec may return.'),
    maxAllocationBytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024)
      .describe('Largest ArrayBuffer or typed array a `js` script may allocate (outside the JS heap limit).'),
  })
  .prefault({});

export const codecsSchema = z
  .strictObject({
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .max(60_000)
      .default(500)
      .describe(
        'Longest a decode or encode may take; later the uplink is published with `decodeError` (reason `timeout`).',
      ),
    maxPending: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Cap on asynchronous decodes in flight (sandboxed codecs and asynchronous plugins).'),
    plugins: z
      .record(z.string(), pluginEntry)
      .default({})
      .refine((p) => Object.keys(p).every((n) => PLUGIN_NAME.test(n)), {
        message: 'a codec name is 1-64 of lowercase a-z 0-9 _ - and starts with a letter',
      })
      .refine(
        (p) => !Object.keys(p).some((n) => (BUILTIN_CODEC_NAMES as readonly string[]).includes(n)),
        `a plugin cannot take a built-in codec name (${BUILTIN_CODEC_NAMES.join(', ')})`,
      )
      .describe('User codec plugins by name: a module path or package name, or `{ module, isolation }`.'),
    sandbox: sandboxSchema,
  })
  .prefault({});

export type CodecsConfig = z.infer<typeof codecsSchema>;
export type SandboxConfig = z.infer<typeof sandboxSchema>;
export type PluginEntry = z.infer<typeof pluginEntry>;
export type Isolation = z.infer<typeof isolationSchema>;

/** A plugin entry with defaults applied. */
export function pluginModule(entry: PluginEntry): { module: string; isolation: Isolation } {
  return typeof entry === 'string' ? { module: entry, isolation: 'worker' } : entry;
}

/** True when a plugin reference is a file path (resolved against the config file's folder), not a package. */
export function isModulePath(ref: string): boolean {
  return ref.startsWith('./') || ref.startsWith('../') || ref.startsWith('/');
}
