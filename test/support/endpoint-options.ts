/** CoAP endpoint options for in-process endpoint tests: small caps, RFC transmission parameters. */
import { DEFAULT_TRANSMISSION } from '../../src/coap/constants.js';
import type { EndpointOptions } from '../../src/coap/endpoint.js';

export function endpointOptions(over: Partial<EndpointOptions> = {}): EndpointOptions {
  return {
    transmission: { ...DEFAULT_TRANSMISSION },
    piggybackWindowMs: 100,
    maxMessageBytes: 1280,
    dedup: { maxEntries: 1000, maxBytes: 1_000_000 },
    blockwise: {
      maxBodyBytes: 4096,
      preferredBlockSize: 1024,
      maxTransfers: 10,
      maxBytes: 1_000_000,
      lifetimeMs: 60_000,
    },
    maxInFlight: 100,
    ...over,
  };
}
