import { z } from 'zod';

export const topicTemplate = z
  .string()
  .min(1)
  .default('cellgate/{thing}/{path}')
  .describe('Topic template: {thing}, {deviceId}, {path}, {pskIdentity}.');

const fileSink = z.strictObject({
  type: z.literal('file').describe('Append JSON lines to a file.'),
  path: z.string().default('uplinks.jsonl').describe('JSON-lines file each uplink is appended to.'),
  topic: topicTemplate,
  fsync: z.boolean().default(false).describe('fsync after each write batch before acknowledging.'),
});

const stdoutSink = z.strictObject({
  type: z.literal('stdout').describe('Write JSON lines to standard output.'),
  topic: topicTemplate,
});

const nullSink = z.strictObject({
  type: z.literal('null').describe('Accept and drop (benchmarks).'),
  topic: topicTemplate,
});

export const publisherSchema = z
  .discriminatedUnion('type', [fileSink, stdoutSink, nullSink])
  .prefault({ type: 'file' })
  .describe('Where uplinks go.');

export type PublisherConfig = z.infer<typeof publisherSchema>;
