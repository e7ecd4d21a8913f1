/**
 * The `coap:` section: the NoSec and DTLS listeners' addresses, RFC 7252 transmission parameters, and the caps on
 * what the CoAP endpoint keeps (deduplication, block-wise transfers, NoSec peers).
 */
import { z } from 'zod';
import { portSchema } from './port.js';

export const transmissionSchema = z
  .strictObject({
    ackTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(2000)
      .describe('ACK_TIMEOUT (RFC 7252 §4.8).'),
    ackRandomFactor: z.number().min(1).max(4).default(1.5).describe('ACK_RANDOM_FACTOR.'),
    maxRetransmit: z.number().int().min(0).max(10).default(4).describe('MAX_RETRANSMIT.'),
    nstart: z.number().int().min(1).max(16).default(1).describe('NSTART: outstanding CON messages per peer.'),
    maxLatencyMs: z
      .number()
      .int()
      .min(0)
      .default(100_000)
      .describe('MAX_LATENCY; with the others it sets EXCHANGE_LIFETIME (247 s) and NON_LIFETIME (145 s).'),
    processingDelayMs: z.number().int().min(0).default(2000).describe('PROCESSING_DELAY.'),
  })
  .prefault({});

export const coapSchema = z
  .strictObject({
    bind: z.string().default('0.0.0.0').describe('Address the CoAP and DTLS listeners bind to.'),
    port: portSchema.default(5683).describe('NoSec CoAP port (UDP).'),
    dtlsPort: portSchema.default(5684).describe('CoAP over DTLS port (UDP).'),
    nosec: z
      .boolean()
      .default(true)
      .describe('Serve NoSec CoAP on `port` (devices behind a carrier VPN / private APN).'),
    transmission: transmissionSchema,
    piggybackWindowMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(1000)
      .describe(
        'How long a CON request may take before the gateway sends an empty ACK and answers later with a separate CON response.',
      ),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Cap on requests being handled at once; past it, requests get 5.03 with Max-Age.'),
    maxMessageBytes: z
      .number()
      .int()
      .min(64)
      .max(65507)
      .default(1280)
      .describe('Largest CoAP message accepted or sent; larger bodies use block-wise transfer.'),
    dedup: z
      .strictObject({
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(250_000)
          .describe('Cap on remembered exchanges (for deduplication of retransmissions).'),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 * 1024)
          .describe('Cap on bytes of cached responses kept for deduplication.'),
        lifetimeMs: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe(
            'How long a CON exchange is remembered; defaults to EXCHANGE_LIFETIME (NON: NON_LIFETIME).',
          ),
      })
      .prefault({}),
    blockwise: z
      .strictObject({
        maxBodyBytes: z
          .number()
          .int()
          .min(16)
          .default(1024 * 1024)
          .describe('Largest request body reassembled from Block1 blocks; larger ones get 4.13 with Size1.'),
        preferredBlockSize: z
          .union([
            z.literal(16),
            z.literal(32),
            z.literal(64),
            z.literal(128),
            z.literal(256),
            z.literal(512),
            z.literal(1024),
          ])
          .default(1024)
          .describe('Block size the gateway uses unless the client asks for a smaller one.'),
        maxTransfers: z
          .number()
          .int()
          .min(1)
          .default(10_000)
          .describe('Cap on block-wise transfers in progress.'),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(128 * 1024 * 1024)
          .describe('Cap on bytes held by block-wise transfers in progress.'),
        lifetimeMs: z
          .number()
          .int()
          .min(1000)
          .default(247_000)
          .describe('An idle block-wise transfer is dropped after this long.'),
      })
      .prefault({}),
    peers: z
      .strictObject({
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(1_000_000)
          .describe('Cap on NoSec peers (addresses) tracked.'),
      })
      .prefault({}),
    identity: z
      .strictObject({
        queryKey: z
          .string()
          .min(1)
          .default('id')
          .describe('NoSec devices name themselves with this Uri-Query key (`?id=<deviceId>`).'),
        byAddress: z
          .boolean()
          .default(true)
          .describe(
            'Identify NoSec devices by source IP when the device file lists `ip` (private-APN fleets).',
          ),
      })
      .prefault({}),
    socketBufferBytes: z
      .number()
      .int()
      .min(65536)
      .default(4 * 1024 * 1024)
      .describe('UDP receive and send buffer size requested from the kernel.'),
  })
  .prefault({});
