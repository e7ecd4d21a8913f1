/** Builds the configured publisher. Each `publisher.type` in the config maps to one implementation. */
import type { PublisherConfig } from '../config/publisher.js';
import type { Logger } from '../ops/logger.js';
import type { CapReporter, MetricsRegistry } from '../ops/metrics.js';
import { FilePublisher } from './file.js';
import type { Publisher } from './publisher.js';
import { NullPublisher, StdoutPublisher } from './stream.js';

export interface PublisherDeps {
  log: Logger;
  metrics: MetricsRegistry;
  caps: CapReporter;
}

export function createPublisher(config: PublisherConfig, _deps: PublisherDeps): Promise<Publisher> {
  switch (config.type) {
    case 'file':
      return Promise.resolve(new FilePublisher(config.path, config.fsync));
    case 'stdout':
      return Promise.resolve(new StdoutPublisher());
    case 'null':
      return Promise.resolve(new NullPublisher());
  }
}
