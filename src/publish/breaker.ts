/**
 * A circuit breaker: after `failureThreshold` consecutive failures it opens for `openMs`, then lets one probe
 * through (half-open). A successful probe closes it; a failed one opens it again for twice as long, up to
 * `maxOpenMs`. Time is passed in, so callers use one clock reading per event.
 */
export const BreakerState = { Closed: 0, Open: 1, HalfOpen: 2 } as const;
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState];

export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
  maxOpenMs: number;
}

export class CircuitBreaker {
  private state_: BreakerState = BreakerState.Closed;
  private failures = 0;
  private openUntil = 0;
  private openFor: number;
  /** How many times the breaker opened. */
  opened = 0;

  constructor(private readonly opts: BreakerOptions) {
    this.openFor = opts.openMs;
  }

  /** The state at `now` (an open breaker whose time is up reads as half-open). */
  state(now: number): BreakerState {
    if (this.state_ === BreakerState.Open && now >= this.openUntil) return BreakerState.HalfOpen;
    return this.state_;
  }

  /**
   * Whether a new message may go out at `now`. When the open period is over, the first caller becomes the
   * probe and the breaker is half-open until that probe reports.
   */
  allow(now: number): boolean {
    if (this.state_ === BreakerState.Closed) return true;
    if (this.state_ === BreakerState.Open && now >= this.openUntil) {
      this.state_ = BreakerState.HalfOpen;
      return true;
    }
    return false;
  }

  /** The sink answered (accepted, or rejected the message itself): it is up. */
  success(): void {
    this.failures = 0;
    if (this.state_ !== BreakerState.Closed) {
      this.state_ = BreakerState.Closed;
      this.openFor = this.opts.openMs;
    }
  }

  /** The sink failed; returns true when this failure opened the breaker. */
  failure(now: number): boolean {
    if (this.state_ === BreakerState.HalfOpen) {
      this.openFor = Math.min(this.openFor * 2, this.opts.maxOpenMs);
      return this.open(now);
    }
    if (this.state_ === BreakerState.Open) return false;
    if (++this.failures < this.opts.failureThreshold) return false;
    return this.open(now);
  }

  /** Seconds until a probe will be let through (at least 1): the Max-Age of a 5.03. */
  retryAfterSeconds(now: number): number {
    const left = this.state_ === BreakerState.Closed ? 0 : this.openUntil - now;
    return Math.max(1, Math.ceil(left / 1000));
  }

  private open(now: number): boolean {
    this.state_ = BreakerState.Open;
    this.openUntil = now + this.openFor;
    this.failures = 0;
    this.opened++;
    return true;
  }
}
