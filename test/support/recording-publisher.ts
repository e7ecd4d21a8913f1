/** A publisher for tests: records what it accepts; can be told to fail or to take its time. */
import {
  messageBody,
  PublishError,
  type PublishCallback,
  type PublishMessage,
  type Publisher,
} from '../../src/publish/publisher.js';

export class RecordingPublisher implements Publisher {
  readonly type = 'recording';
  readonly messages: PublishMessage[] = [];
  /** When set, publishes fail with this Max-Age. */
  failWithRetryAfter: number | undefined;
  /** Delay before accepting, ms (0 = synchronously). */
  delayMs = 0;
  private waiters: { n: number; resolve: () => void }[] = [];

  ready(): boolean {
    return this.failWithRetryAfter === undefined;
  }

  publish(msg: PublishMessage, done: PublishCallback): void {
    const settle = () => {
      if (this.failWithRetryAfter !== undefined) {
        return done(new PublishError('sink down (test)', this.failWithRetryAfter));
      }
      messageBody(msg);
      this.messages.push(msg);
      for (const w of this.waiters.filter((w) => this.messages.length >= w.n)) w.resolve();
      this.waiters = this.waiters.filter((w) => this.messages.length < w.n);
      done(null);
    };
    if (this.delayMs > 0) setTimeout(settle, this.delayMs);
    else settle();
  }

  /** Resolves once at least `n` messages were accepted. */
  waitFor(n: number, timeoutMs = 5000): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`expected ${n} publishes, saw ${this.messages.length}`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  /** Resolves once exactly `n` messages were accepted and no more came within `settleMs` after. */
  async waitForExactly(n: number, settleMs = 200, timeoutMs = 5000): Promise<void> {
    await this.waitFor(n, timeoutMs);
    await new Promise((r) => setTimeout(r, settleMs));
    if (this.messages.length !== n)
      throw new Error(`expected exactly ${n} publishes, saw ${this.messages.length}`);
  }

  /** Raw bodies of the accepted uplinks. */
  raws(): Buffer[] {
    return this.messages.map((m) => Buffer.from(m.envelope.raw, 'base64'));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
