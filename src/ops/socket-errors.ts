/** Logs socket errors at most once a minute per listener, with the count since the last line. */
import type { Logger } from './logger.js';

export function socketErrorLog(log: Logger, listener: string, intervalMs = 60_000): (err: Error) => void {
  let last = 0;
  let since = 0;
  return (err) => {
    since++;
    const now = Date.now();
    if (now - last < intervalMs) return;
    log.warn({ listener, errors: since, err: err.message }, 'UDP socket error');
    last = now;
    since = 0;
  };
}
