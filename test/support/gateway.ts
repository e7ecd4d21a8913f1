/** Starts a whole gateway in-process on ephemeral ports, with its files in a temporary folder. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { startGateway, type GatewayOverrides, type RunningGateway } from '../../src/gateway/app.js';
import { silentLogger } from '../../src/ops/logger.js';
import { RecordingPublisher } from './recording-publisher.js';

export interface TestGatewayOptions {
  devices?: unknown[];
  /** Config sections merged over the test defaults (ports 0, loopback). */
  config?: Record<string, unknown>;
  files?: Record<string, Buffer | string>;
  overrides?: GatewayOverrides;
  /** Use the configured publisher instead of a RecordingPublisher. */
  configuredPublisher?: boolean;
}

export interface TestGateway extends RunningGateway {
  dir: string;
  coapPort: number;
  recorder: RecordingPublisher;
  stop(): Promise<void>;
}

export const DEFAULT_DEVICES = [
  { id: 'dev-1', thing: 'thing-1' },
  { id: 'dev-2' },
  { id: 'apn-7', ip: '127.0.0.7' },
  { id: 'secure-1', psk: { identity: 'secure-1', key: 'text:secretPSK' } },
];

/** Deep merge of config sections (maps merge; other values replace). */
export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-test-'));
  mkdirSync(join(dir, 'files'));
  for (const [name, data] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, 'files', name), data);
  writeFileSync(join(dir, 'devices.yaml'), stringify(opts.devices ?? DEFAULT_DEVICES));
  const config = merge(
    {
      coap: { bind: '127.0.0.1', port: 0, dtlsPort: 0 },
      http: { bind: '127.0.0.1', port: 0 },
      devices: { file: 'devices.yaml', watch: false },
      publisher: { type: 'file', path: 'uplinks.jsonl' },
      downloads: { dir: 'files' },
      log: { level: 'silent' },
    },
    opts.config ?? {},
  );
  writeFileSync(join(dir, 'cellgate.yaml'), stringify(config));
  const recorder = new RecordingPublisher();
  const gw = await startGateway(loadConfig(join(dir, 'cellgate.yaml'), {}), {
    log: silentLogger(),
    publisher: opts.configuredPublisher ? undefined : recorder,
    ...opts.overrides,
  });
  return Object.assign(gw, {
    dir,
    coapPort: gw.ports.coap as number,
    recorder,
    stop: async () => {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
