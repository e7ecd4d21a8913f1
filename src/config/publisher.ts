import { z } from 'zod';

export const topicTemplate = z
  .string()
  .min(1)
  .default('cellgate/{thing}/{path}')
  .describe('Topic template: {thing}, {deviceId}, {path}, {pskIdentity}.');

const MiB = 1024 * 1024;

export const outboxSchema = z
  .strictObject({
    dir: z
      .string()
      .default('outbox')
      .describe('Folder of the durable outbox (append-only segment files and the drain cursor).'),
    maxBytes: z
      .number()
      .int()
      .min(MiB)
      .default(1024 * MiB)
      .describe('Cap on bytes held in the outbox; past it, uplinks get 5.03 until the sink catches up.'),
    maxRecords: z.number().int().min(1).default(5_000_000).describe('Cap on messages held in the outbox.'),
    segmentBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(64 * MiB)
      .describe('Size at which the outbox starts a new segment file; drained segments are deleted.'),
    maxPendingBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(16 * MiB)
      .describe('Cap on bytes waiting in memory for the next group commit.'),
    fsync: z
      .boolean()
      .default(true)
      .describe(
        'fdatasync each group commit before acknowledging. Without it a process crash loses nothing, a power loss may.',
      ),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .max(65_536)
      .default(1024)
      .describe('Messages the drain hands to the sink at once (in log order).'),
    cursorIntervalMs: z
      .number()
      .int()
      .min(10)
      .default(200)
      .describe('How often the drain position is saved; after a crash at most this much is published again.'),
  })
  .prefault({});

export type OutboxConfig = z.infer<typeof outboxSchema>;

/** Fields every publisher has: the topic template and the acknowledgement mode. */
const common = {
  topic: topicTemplate,
  ack: z
    .enum(['after-publish', 'after-outbox'])
    .default('after-publish')
    .describe(
      '`after-publish`: a device gets 2.04 once the sink accepted its uplink. `after-outbox`: once the uplink is fsynced to the local outbox, which then drains to the sink in order.',
    ),
  outbox: outboxSchema,
};

/** Delivery settings of the network publishers (aws-iot, mqtt). */
const delivery = {
  qos: z
    .union([z.literal(0), z.literal(1)])
    .default(1)
    .describe('MQTT QoS of the published messages.'),
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(65_536)
    .default(256)
    .describe('Messages being published at once (including those waiting to retry).'),
  requestTimeoutMs: z
    .number()
    .int()
    .min(50)
    .default(5000)
    .describe('One attempt is aborted after this long.'),
  deadlineMs: z
    .number()
    .int()
    .min(50)
    .default(10_000)
    .describe(
      'A message is given up (5.03) when it could not be published within this time, retries included.',
    ),
  queue: z
    .strictObject({
      maxEntries: z
        .number()
        .int()
        .min(0)
        .default(10_000)
        .describe('Messages waiting for a free slot; past it, uplinks get 5.03.'),
      maxBytes: z
        .number()
        .int()
        .min(0)
        .default(32 * MiB)
        .describe('Bytes of messages waiting for a free slot.'),
    })
    .prefault({}),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().min(1).max(20).default(4).describe('Attempts per message.'),
      baseDelayMs: z
        .number()
        .int()
        .min(1)
        .default(50)
        .describe('First backoff; doubles per attempt, with full jitter.'),
      maxDelayMs: z.number().int().min(1).default(2000).describe('Longest backoff between attempts.'),
    })
    .prefault({}),
  breaker: z
    .strictObject({
      failureThreshold: z
        .number()
        .int()
        .min(1)
        .default(20)
        .describe(
          'Consecutive failed attempts that open the circuit breaker (uplinks then get 5.03 at once).',
        ),
      openMs: z
        .number()
        .int()
        .min(10)
        .default(5000)
        .describe('How long the breaker stays open before one probe message is let through.'),
      maxOpenMs: z
        .number()
        .int()
        .min(10)
        .default(60_000)
        .describe('Longest open period; it doubles after each failed probe up to this.'),
    })
    .prefault({}),
};

const fileSink = z.strictObject({
  type: z.literal('file').describe('Append JSON lines to a file.'),
  path: z.string().default('uplinks.jsonl').describe('JSON-lines file each uplink is appended to.'),
  fsync: z.boolean().default(false).describe('fsync after each write batch before acknowledging.'),
  ...common,
});

const stdoutSink = z.strictObject({
  type: z.literal('stdout').describe('Write JSON lines to standard output.'),
  ...common,
});

const nullSink = z.strictObject({
  type: z.literal('null').describe('Accept and drop (benchmarks).'),
  ...common,
});

const awsIotSink = z.strictObject({
  type: z
    .literal('aws-iot')
    .describe('Publish to AWS IoT Core through the IoT Data Plane HTTPS API (SigV4).'),
  endpoint: z
    .string()
    .default('')
    .describe(
      'Account data endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`), as a host name or URL. Empty: AWS_ENDPOINT_URL_IOT_DATA_PLANE.',
    ),
  region: z
    .string()
    .default('')
    .describe(
      'AWS region. Empty: read from the endpoint host name, else the SDK default (AWS_REGION, profile).',
    ),
  connections: z
    .number()
    .int()
    .min(1)
    .max(4096)
    .default(64)
    .describe('Keep-alive HTTPS connections to the endpoint.'),
  ...delivery,
  ...common,
});

const tlsSchema = z
  .strictObject({
    ca: z
      .string()
      .default('')
      .describe('PEM file of the CA(s) that sign the broker certificate; empty: system CAs.'),
    cert: z
      .string()
      .default('')
      .describe('PEM file of the X.509 client certificate (AWS IoT Core: the thing certificate).'),
    key: z.string().default('').describe('PEM file of the client private key.'),
    rejectUnauthorized: z.boolean().default(true).describe('Verify the broker certificate.'),
    servername: z.string().default('').describe('TLS server name (SNI); empty: the URL host.'),
    alpn: z
      .string()
      .default('')
      .describe('ALPN protocol, e.g. `x-amzn-mqtt-ca` for AWS IoT Core on port 443.'),
  })
  .prefault({});

const mqttSink = z.strictObject({
  type: z.literal('mqtt').describe('Publish to an MQTT broker (3.1.1 or 5, TCP or TLS).'),
  url: z
    .string()
    .default('mqtt://127.0.0.1:1883')
    .describe('Broker URL: mqtt://host:1883 or mqtts://host:8883.'),
  protocolVersion: z
    .union([z.literal(4), z.literal(5)])
    .default(5)
    .describe('MQTT 3.1.1 (4) or MQTT 5 (5, adds content type and user properties).'),
  clientId: z
    .string()
    .default('')
    .describe('MQTT client id; empty: `cellgate-<host name>`. Must be unique per connection.'),
  username: z.string().default('').describe('User name, if the broker wants one.'),
  password: z
    .string()
    .default('')
    .describe('Password, if the broker wants one; prefer CELLGATE_PUBLISHER__PASSWORD in the environment.'),
  keepaliveSeconds: z.number().int().min(0).max(65_535).default(60).describe('MQTT keep-alive.'),
  connectTimeoutMs: z.number().int().min(100).default(10_000).describe('Time allowed for connecting.'),
  reconnectPeriodMs: z.number().int().min(100).default(1000).describe('Pause between reconnect attempts.'),
  tls: tlsSchema,
  ...delivery,
  ...common,
});

export const publisherSchema = z
  .discriminatedUnion('type', [fileSink, stdoutSink, nullSink, awsIotSink, mqttSink])
  .prefault({ type: 'file' })
  .describe('Where uplinks go.');

export type PublisherConfig = z.infer<typeof publisherSchema>;
export type AwsIotPublisherConfig = Extract<PublisherConfig, { type: 'aws-iot' }>;
export type MqttPublisherConfig = Extract<PublisherConfig, { type: 'mqtt' }>;
/** The delivery settings shared by the network publishers. */
export type DeliveryConfig = Pick<
  AwsIotPublisherConfig,
  'qos' | 'concurrency' | 'requestTimeoutMs' | 'deadlineMs' | 'queue' | 'retry' | 'breaker'
>;
