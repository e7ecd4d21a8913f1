/** Why a decode or encode failed, as the metric's `reason` label tells it. */
import { isDecodeError } from './codec.js';

export type FailureReason =
  /** The codec said the payload is not what it decodes (DecodeError, formatter `errors`). */
  | 'error'
  /** The codec threw something else: a bug in the plugin. */
  | 'exception'
  /** The codec returned something that is not a decode result or not JSON. */
  | 'invalid'
  | 'timeout'
  /** The sandbox worker ran past its heap limit. */
  | 'memory'
  /** The sandbox worker died. */
  | 'crashed'
  /** A cap on waiting work was reached. */
  | 'overload'
  /** The codec could not be created or is disabled. */
  | 'unavailable';

export const FAILURE_REASONS: readonly FailureReason[] = [
  'error',
  'exception',
  'invalid',
  'timeout',
  'memory',
  'crashed',
  'overload',
  'unavailable',
];

/** A failure with its reason class; codecs throw DecodeError instead, the registry and sandbox this. */
export class CodecFailure extends Error {
  override readonly name = 'CodecFailure';
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
  }
}

export function failureReason(err: unknown): FailureReason {
  if (err instanceof CodecFailure) return err.reason;
  return isDecodeError(err) ? 'error' : 'exception';
}

/** The text that goes into the envelope's `decodeError`: one line, bounded. */
export function failureMessage(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  const line = raw.replace(/\s+/g, ' ').trim() || 'unknown error';
  const text = err instanceof CodecFailure || isDecodeError(err) ? line : `codec fault: ${line}`;
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
