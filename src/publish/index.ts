/**
 * Builds the configured publisher. Each `publisher.type` in the config maps to one implementation; with
 * `ack: after-outbox` it is wrapped in the durable outbox.
 */
import type { PublisherConfig } from '../config/publisher.js';
import type { Logger } from '../ops/logger.js';
import type { CapReporter, MetricsRegistry } from '../ops/metrics.js';
import { AwsIotSink } from './aws-iot.js';
import { Delivery } from './delivery.js';
import { FilePublisher } from './file.js';
import { MqttSink } from './mqtt.js';
import { Outbox } from './outbox/outbox.js';
import type { Publisher } from './publisher.js';
import { NullPublisher, StdoutPublisher } from './stream.js';

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
