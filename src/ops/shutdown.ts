/**
 * Graceful shutdown. On SIGTERM the gateway reports not ready, keeps serving for `shutdown.delayMs` (the
 * load balancer stops sending new flows), then answers new requests 5.03 with Max-Age while the exchanges in
 * flight finish and their separate responses are acknowledged (up to `shutdown.drainTimeoutMs`), closes the
 * publisher (which settles or durably keeps what it holds) and the rest, and exits 0. Whatever happens, the
 * process exits by `shutdown.deadlineMs` after the signal. A CON uplink is only ever acknowledged after the
 * publisher accepted it, so nothing acknowledged is lost on the way.
 */
import type { ShutdownConfig } from '../config/shutdown.js';
import type { Logger } from './logger.js';

/** What the shutdown sequence drives; the running gateway provides it. */
export interface Drainable {
  readonly log: Logger;
  /** Turns /readyz to 503 ("draining"). */
  markDraining(): void;
  /** Refuses new exchanges with 5.03 and Max-Age. */
  refuseNew(maxAgeSeconds: number): void;
  /** Resolves true once nothing is in flight, false after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean>;
  /** What is still pending (for the log line when the drain times out). */
  pending(): Record<string, number>;
  closePublisher(): Promise<void>;
  /** Closes everything else (listeners, endpoint, HTTP port, registry). */
  close(): Promise<void>;
}

export interface ShutdownResult {
  /** Everything in flight finished within the drain timeout. */
  drained: boolean;
  ms: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function drainAndClose(
  target: Drainable,
  cfg: ShutdownConfig,
  signal = 'shutdown',
): Promise<ShutdownResult> {
  const t0 = Date.now();
  const log = target.log;
  target.markDraining();
  log.info({ signal, delayMs: cfg.delayMs, drainTimeoutMs: cfg.drainTimeoutMs }, 'draining');
  if (cfg.delayMs > 0) await sleep(cfg.delayMs);
  target.refuseNew(cfg.retryAfterSeconds);
  const drained = await target.whenIdle(cfg.drainTimeoutMs);
  if (!drained) log.warn(target.pending(), 'drain timed out; abandoning what is still in flight');
  await target.closePublisher();
  await target.close();
  const ms = Date.now() - t0;
  log.info({ drained, ms }, 'stopped');
  return { drained, ms };
}

export interface Terminable {
  readonly log: Logger;
  shutdown(signal: string): Promise<ShutdownResult>;
}

/**
 * Installs SIGTERM / SIGINT handling for a running gateway: the first signal starts the graceful shutdown and
 * arms the deadline; a second SIGINT exits at once (130). `exit` is process.exit outside tests.
 */
export function exitOnTermination(
  gw: Terminable,
  cfg: ShutdownConfig,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (signal === 'SIGINT') {
        gw.log.warn('second interrupt; exiting now');
        exit(130);
      }
      return;
    }
    stopping = true;
    const deadline = setTimeout(() => {
      gw.log.warn({ deadlineMs: cfg.deadlineMs }, 'shutdown deadline reached; exiting');
      exit(0);
    }, cfg.deadlineMs);
    gw.shutdown(signal).then(
      () => {
        clearTimeout(deadline);
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        gw.log.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
