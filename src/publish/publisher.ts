/**
 * The publisher interface: where envelopes go. A publisher calls `done(null)` only once the message is
 * safe (accepted by the sink, or durably queued), so a CON uplink is acknowledged only then.
 */
import type { Envelope } from './envelope.js';

export interface PublishMessage {
  /** Stable message id (also `envelope.messageId`). */
  readonly id: string;
  readonly topic: string;
  readonly deviceId: string;
  readonly thing: string;
  readonly envelope: Envelope;
  /** The envelope as JSON bytes, filled by `messageBody` once and reused by retries. */
  body?: Buffer;
}

/**
 * A failure to publish. `retryAfterSeconds` becomes the Max-Age of the 5.03 answer. `permanent` says the
 * sink refused this message itself (too large, invalid topic): trying it again cannot help.
 */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  readonly permanent: boolean;
  constructor(
    message: string,
    readonly retryAfterSeconds = 30,
    options?: { cause?: unknown; permanent?: boolean },
  ) {
    super(message, options);
    this.permanent = options?.permanent ?? false;
  }
}

export type PublishCallback = (err: PublishError | null) => void;

export interface Publisher {
  readonly type: string;
  /** Accepts a message; calls `done` exactly once, possibly synchronously. */
  publish(msg: PublishMessage, done: PublishCallback): void;
  /** False while the publisher refuses work (circuit breaker open, shutting down). */
  ready(): boolean;
  /**
   * Messages accepted (acknowledged to devices) but not yet delivered to the sink: the outbox's backlog.
   * Optional; a graceful shutdown waits, within its drain timeout, for it to reach 0 before closing.
   */
  pending?(): number;
  /** Stops taking messages and settles (or durably keeps) those in flight. */
  close(): Promise<void>;
}

/** The envelope's JSON bytes, serialised once per message. */
export function messageBody(msg: PublishMessage): Buffer {
  return (msg.body ??= Buffer.from(JSON.stringify(msg.envelope)));
}
