/** The `stdout` sink (JSON lines on standard output) and the `null` sink (accepts and drops; benchmarks). */
import { messageBody, type PublishCallback, type PublishMessage, type Publisher } from './publisher.js';

export class StdoutPublisher implements Publisher {
  readonly type = 'stdout';
  private closed = false;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  ready(): boolean {
    return !this.closed;
  }

  publish(msg: PublishMessage, done: PublishCallback): void {
    const line = `{"topic":${JSON.stringify(msg.topic)},"payload":${messageBody(msg).toString()}}\n`;
    if (this.out.write(line)) done(null);
    else this.out.once('drain', () => done(null));
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

export class NullPublisher implements Publisher {
  readonly type = 'null';
  count = 0;

  ready(): boolean {
    return true;
  }

  publish(_msg: PublishMessage, done: PublishCallback): void {
    this.count++;
    done(null);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
