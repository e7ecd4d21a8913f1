/** Command-line options of `cellgate simulate`. */
import { parseArgs } from 'node:util';
import { decodeKey } from '../devices/device.js';
import { UsageError } from '../config/errors.js';
import { DEFAULT_PAYLOAD, payloadSource, type PayloadSource } from './payload.js';

export const SIMULATE_USAGE = `Usage: cellgate simulate [options]

Simulates a fleet of devices sending CoAP uplinks to a gateway, then prints a summary.

  --host H            gateway host (default 127.0.0.1)
  --port P            gateway port (default 5683, or 5684 with --dtls)
  --devices N         number of devices (default 1); device i is <id-prefix><i>, i = --first … --first+N-1
  --count C           uplinks per device (default 1)
  --rate R            uplinks per second over all devices; devices sleep between uplinks
                      (default 0: each device sends its next uplink as soon as the last one is answered)
  --id-prefix P       device id prefix (default sim-)
  --first I           number of the first device (default 1)
  --path PATH         uplink path (default telemetry)
  --payload SPEC      text:<template> | hex:<hex> | base64:<b64> | random:<n> | @<file>; templates fill in
                      {id} {i} {seq} {ts} (default ${DEFAULT_PAYLOAD})
  --content-format N  Content-Format of the uplinks (default none)
  --accept N          Content-Format wanted for downlinks, e.g. 50 (JSON) or 60 (CBOR) (default none)
  --block-size B      Block1 size for larger payloads: 16 … 1024 (default 512)
  --non-ratio F       share of uplinks sent non-confirmable, 0 … 1 (default 0: all CON)
  --rebind F          chance, before each uplink after the first, that the device comes back from a new
                      source port (a carrier NAT rebinding), 0 … 1 (default 0)
  --dtls              CoAP over DTLS 1.2 with a pre-shared key; the device id is the PSK identity
  --psk-key K         the devices' PSK: hex:… | base64:… | text:… (required with --dtls)
  --handshake-timeout-ms T
                      give up a DTLS handshake after T ms (default 30000); a closed port (ICMP port
                      unreachable) ends it at once and counts as "unreachable", an alert as "handshake-refused"
  --ack-timeout-ms T  CoAP ACK_TIMEOUT (default 2000); MAX_RETRANSMIT is 4
  --response-timeout-ms T
                      wait for a separate response or a NON answer (default 30000)
  --progress-ms T     progress line interval on stderr (default 1000; 0 for none)
  --json              print the summary as JSON
`;

export interface SimOptions {
  host: string;
  port: number;
  devices: number;
  count: number;
  rate: number;
  idPrefix: string;
  first: number;
  path: string;
  payload: PayloadSource;
  contentFormat?: number;
  accept?: number;
  blockSize: number;
  nonRatio: number;
  rebind: number;
  dtls: boolean;
  pskKey?: Buffer;
  ackTimeoutMs: number;
  handshakeTimeoutMs: number;
  responseTimeoutMs: number;
  progressMs: number;
  json: boolean;
}

function num(
  values: Record<string, unknown>,
  name: string,
  fallback: number,
  min: number,
  max: number,
  integer = true,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return n;
}

export function parseSimOptions(argv: string[]): SimOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        devices: { type: 'string' },
        count: { type: 'string' },
        rate: { type: 'string' },
        'id-prefix': { type: 'string' },
        first: { type: 'string' },
        path: { type: 'string' },
        payload: { type: 'string' },
        'content-format': { type: 'string' },
        accept: { type: 'string' },
        'block-size': { type: 'string' },
        'non-ratio': { type: 'string' },
        rebind: { type: 'string' },
        dtls: { type: 'boolean' },
        'psk-key': { type: 'string' },
        'ack-timeout-ms': { type: 'string' },
        'handshake-timeout-ms': { type: 'string' },
        'response-timeout-ms': { type: 'string' },
        'progress-ms': { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const dtls = values.dtls === true;
  let pskKey: Buffer | undefined;
  if (values['psk-key'] !== undefined) {
    try {
      pskKey = decodeKey(values['psk-key'] as string);
    } catch (err) {
      throw new UsageError(`--psk-key: ${(err as Error).message}`);
    }
  }
  if (dtls && !pskKey) throw new UsageError('--dtls needs --psk-key');
  if (!dtls && pskKey) throw new UsageError('--psk-key is used with --dtls');
  let payload: PayloadSource;
  try {
    payload = payloadSource((values.payload as string | undefined) ?? DEFAULT_PAYLOAD);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const blockSize = num(values, 'block-size', 512, 16, 1024);
  if ((blockSize & (blockSize - 1)) !== 0) throw new UsageError('--block-size must be a power of two');
  const contentFormat =
    values['content-format'] === undefined ? undefined : num(values, 'content-format', 0, 0, 65535);
  return {
    host: (values.host as string | undefined) ?? '127.0.0.1',
    port: num(values, 'port', dtls ? 5684 : 5683, 1, 65535),
    devices: num(values, 'devices', 1, 1, 1_000_000),
    count: num(values, 'count', 1, 1, 1_000_000_000),
    rate: num(values, 'rate', 0, 0, 10_000_000, false),
    idPrefix: (values['id-prefix'] as string | undefined) ?? 'sim-',
    first: num(values, 'first', 1, 0, Number.MAX_SAFE_INTEGER),
    path: ((values.path as string | undefined) ?? 'telemetry').replace(/^\/+/, ''),
    payload,
    contentFormat,
    accept: values.accept === undefined ? undefined : num(values, 'accept', 0, 0, 65535),
    blockSize,
    nonRatio: num(values, 'non-ratio', 0, 0, 1, false),
    rebind: num(values, 'rebind', 0, 0, 1, false),
    dtls,
    pskKey,
    ackTimeoutMs: num(values, 'ack-timeout-ms', 2000, 10, 600_000),
    handshakeTimeoutMs: num(values, 'handshake-timeout-ms', 30_000, 10, 3_600_000),
    responseTimeoutMs: num(values, 'response-timeout-ms', 30_000, 10, 3_600_000),
    progressMs: num(values, 'progress-ms', 1000, 0, 3_600_000),
    json: values.json === true,
  };
}
