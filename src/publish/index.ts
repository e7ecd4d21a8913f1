/**
 * Builds the configured publisher. Each `publisher.type` in the config maps to one implementation; with
 * `ack: after-outbox` it is wrapped in the durable outbox.
 */
import type { PublisherConfig } from '../config/publisher.js';
import type { Logger } from '../ops/logger.js';
import type { CapReporter, MetricsRegistry } from '../ops/metrics.js';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { AwsIotSink, awsIotTarget } from './aws-iot.js';
import { Delivery } from './delivery.js';
import { FilePublisher } from './file.js';
import { MqttSink, mqttTlsFiles } from './mqtt.js';
import { Outbox } from './outbox/outbox.js';
import type { Publisher } from './publisher.js';
import { NullPublisher, StdoutPublisher } from './stream.js';
import { compileTopic } from './topic.js';

export interface PublisherDeps {
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
}

/** The sink itself, without the outbox. */
async function createSinkPublisher(config: PublisherConfig, deps: PublisherDeps): Promise<Publisher> {
  switch (config.type) {
    case 'file':
      return new FilePublisher(config.path, config.fsync);
    case 'stdout':
      return new StdoutPublisher();
    case 'null':
      return new NullPublisher();
    case 'aws-iot':
      return new Delivery(await AwsIotSink.fromConfig(config, deps.log), config, deps);
    case 'mqtt':
      return new Delivery(await MqttSink.fromConfig(config, deps.log, deps.metrics), config, deps);
  }
}

export async function createPublisher(config: PublisherConfig, deps: PublisherDeps): Promise<Publisher> {
  const sink = await createSinkPublisher(config, deps);
  if (config.ack !== 'after-outbox') return sink;
  try {
    return await Outbox.open(sink, config.outbox, deps);
  } catch (err) {
    await sink.close();
    throw err;
  }
}

/** Throws a ConfigError naming `key` unless the folder exists and is writable, or can be created. */
function writableFolder(dir: string, key: string): void {
  let at = dir;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    if (!statSync(at).isDirectory()) throw new ConfigError(`${key}: ${at} is a file, not a folder`);
    accessSync(at, constants.W_OK);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `${key}: cannot write in ${at} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * What `createPublisher` would refuse in the `publisher` section, found without connecting anywhere: the
 * topic template, the aws-iot endpoint and region, the MQTT TLS files, folders it must write in. One line
 * per problem.
 */
export function publisherProblems(config: PublisherConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  const check = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else problems.push(`publisher.topic: ${(err as Error).message}`);
    }
  };
  check(() => compileTopic(config.topic));
  if (config.type === 'file') check(() => writableFolder(dirname(config.path), 'publisher.path'));
  if (config.ack === 'after-outbox') check(() => writableFolder(config.outbox.dir, 'publisher.outbox.dir'));
  if (config.type === 'aws-iot') check(() => awsIotTarget(config, env));
  if (config.type === 'mqtt') check(() => mqttTlsFiles(config));
  return problems;
}
