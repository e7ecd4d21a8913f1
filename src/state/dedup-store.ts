/**
 * What deduplication shares between replicas. The CoAP endpoint's own cache (src/coap/dedup.ts) answers a
 * retransmission that reaches the replica that saw the request, and a replica that did not see it publishes
 * it again under the same `messageId`, which is derived from what a retransmission repeats
 * (src/gateway/uplink-id.ts): neither needs the store. What cannot be derived is a Block1 upload whose last
 * block is retransmitted to a replica that holds none of the earlier blocks: that replica has not the body to
 * publish. The store remembers, for EXCHANGE_LIFETIME, which exchanges completed and published such an
 * upload, so the retransmitted last block is answered 2.04 instead of 4.08 (which would make the device
 * upload it all again, to be published twice).
 *
 * Keys are per device: `<prefix>{<deviceId>}:up:<exchange key>` in Redis (one slot per device in a cluster).
 */

export interface DedupStore {
  readonly kind: 'memory' | 'redis';
  /**
   * Records that the exchange `key` of a device published the message `messageId`, for `ttlMs`. Settles once
   * recorded; a store that cannot record counts and logs the failure, and still settles.
   */
  remember(deviceId: string, key: string, messageId: string, ttlMs: number, now: number): Promise<void>;
  /** The `messageId` an exchange published, or undefined (also when the store cannot be reached). */
  recall(deviceId: string, key: string, now: number): Promise<string | undefined>;
  /** Operations by outcome, for the metrics. */
  readonly outcomes: ReadonlyMap<string, number>;
  close(): Promise<void>;
}
