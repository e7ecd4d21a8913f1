/**
 * The device simulator: N devices, each with its own socket (NoSec) or DTLS session, sending C uplinks.
 * With a rate, uplinks are spread evenly over the fleet and each device sleeps between its uplinks; a device
 * may come back from a new source port after sleeping, as it does behind a carrier NAT. Live progress goes to
 * stderr; the summary is returned.
 */
import { Code } from '../coap/constants.js';
import { CoapClient, DEFAULT_CLIENT_TIMING } from './coap-client.js';
import { dtlsLinks, HandshakeFailure } from './dtls-link.js';
import type { DeviceLink, LinkFactory } from './link.js';
import type { SimOptions } from './options.js';
import { SimStats, type SimSummary } from './stats.js';
import { resolveHost, UdpChannel } from './udp-channel.js';

/** When stopped, how long uplinks already sent may still be answered. */
const ABORT_GRACE_MS = 1000;

/** NoSec links: one UDP socket per device; the device names itself with `?id=`. */
export function noSecLinks(address: string, port: number): LinkFactory {
  return {
    open: () => UdpChannel.open(address, port),
    query: (id) => [`id=${id}`],
  };
}

async function defaultLinks(opts: SimOptions, stats: SimStats): Promise<LinkFactory> {
  const address = await resolveHost(opts.host);
  return opts.dtls && opts.pskKey
    ? dtlsLinks(address, opts.port, opts.pskKey, stats, opts.ackTimeoutMs, opts.handshakeTimeoutMs)
    : noSecLinks(address, opts.port);
}

export interface SimulationIo {
  /** Where the progress lines go (stderr). */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Overrides how links are made (the DTLS links, tests). */
  links?: LinkFactory;
  /** Stops the simulation early (pending uplinks end as timeouts). */
  signal?: AbortSignal;
}

/** The reason a link failed, as the summary counts it. */
function failureReason(err: unknown, fallback: string): string {
  return err instanceof HandshakeFailure ? err.reason : fallback;
}

export async function runSimulation(
  opts: SimOptions,
  io: SimulationIo = {},
  stats = new SimStats(opts.devices, opts.devices * opts.count),
): Promise<SimSummary> {
  const links = io.links ?? (await defaultLinks(opts, stats));
  const timing = {
    ...DEFAULT_CLIENT_TIMING,
    ackTimeoutMs: opts.ackTimeoutMs,
    responseTimeoutMs: opts.responseTimeoutMs,
  };
  const signal = io.signal;
  const clients = new Set<CoapClient>();
  // Sleeping devices, woken at once when the simulation is stopped (one abort listener for all of them).
  const sleepers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  // Stopping: no new uplinks; those in flight get a moment to be answered before they are given up.
  let giveUp: NodeJS.Timeout | undefined;
  const onAbort = () => {
    for (const wake of [...sleepers]) wake();
    giveUp = setTimeout(() => {
      for (const c of clients) c.abort();
    }, ABORT_GRACE_MS);
    giveUp.unref();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const t0 = performance.now();

  const runDevice = async (k: number): Promise<void> => {
    const n = opts.first + k;
    const id = `${opts.idPrefix}${n}`;
    const query = links.query(id);
    let link: DeviceLink | undefined;
    let client: CoapClient | undefined;
    let etag: Buffer | undefined;
    try {
      for (let seq = 1; seq <= opts.count; seq++) {
        if (signal?.aborted) return;
        if (opts.rate > 0) {
          const due = t0 + (((seq - 1) * opts.devices + k) / opts.rate) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          if (signal?.aborted) return;
        }
        if (!link || !client) {
          try {
            link = await links.open(id);
          } catch (err) {
            // The device's remaining uplinks are never sent.
            stats.fail(failureReason(err, opts.dtls ? 'handshake-refused' : 'connect'), opts.count - seq + 1);
            return;
          }
          client = new CoapClient(link, timing);
          clients.add(client);
        } else if (opts.rebind > 0 && Math.random() < opts.rebind) {
          await link.rebind();
          stats.rebinds++;
        }
        if (link.prepare) {
          try {
            await link.prepare();
          } catch (err) {
            stats.fail(failureReason(err, 'handshake-refused'));
            continue;
          }
        }
        stats.sent++;
        const result = await client.uplink({
          confirmable: !(opts.nonRatio > 0 && Math.random() < opts.nonRatio),
          method: Code.POST,
          path: opts.path,
          query,
          payload: opts.payload({ id, i: n, seq }),
          contentFormat: opts.contentFormat,
          accept: opts.accept,
          etag,
          blockSize: opts.blockSize,
        });
        stats.add(result);
        // The next uplink echoes the downlink's ETag: the device confirms it received it.
        if (result.outcome === 'ok') etag = result.etag;
      }
    } finally {
      if (client) clients.delete(client);
      await link?.close();
    }
  };

  const out = io.progress;
  const tty = out?.isTTY === true;
  const ticker =
    out && opts.progressMs > 0
      ? setInterval(
          () => out.write(tty ? `\r${stats.progressLine()}\x1b[K` : `${stats.progressLine()}\n`),
          opts.progressMs,
        )
      : undefined;
  try {
    await Promise.all(Array.from({ length: opts.devices }, (_, k) => runDevice(k)));
  } finally {
    clearInterval(ticker);
    clearTimeout(giveUp);
    signal?.removeEventListener('abort', onAbort);
    if (ticker && out) out.write(tty ? `\r${stats.progressLine()}\x1b[K\n` : `${stats.progressLine()}\n`);
  }
  return stats.summary();
}
