/**
 * What the gateway checks before it binds a socket, in one place: `cellgate start` runs it first, and
 * `cellgate config check` runs exactly it. Each check adds its problems; all of them are reported together
 * in one ConfigError (exit code 78), one line each.
 */
import { ConfigError, type ConfigErrorCode } from '../config/errors.js';
import type { LoadedConfig } from '../config/load.js';
import { readDeviceSource, type DeviceSource } from '../devices/file-registry.js';
import { credentialProblems } from '../dtls/certificates/credentials.js';
import { AdminAuth } from '../ops/admin-auth.js';
import { publisherProblems } from '../publish/index.js';
import { downlinksUseRedis } from '../downlink/index.js';
import { redisClientOptions } from '../state/redis.js';
import { Keyring } from '../state/sealing.js';
import { RadiusClients } from '../radius/clients.js';

export interface PreflightOptions {
  /** Skip the device file (a registry given by the caller replaces it). */
  devices?: boolean;
  /** Skip the publisher section (a publisher given by the caller replaces it). */
  publisher?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface PreflightReport {
  /** The device file as read, when it was checked. */
  devices?: DeviceSource;
}

function collect(problems: string[], fn: () => void, codes: Set<ConfigErrorCode>): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    codes.add(err.code);
  }
}

/**
 * Runs every start-up check that needs no socket; throws a ConfigError listing every problem found, with the
 * code the problems share (CELLGATE_CONFIG_INVALID when they differ).
 */
export function preflight(loaded: LoadedConfig, opts: PreflightOptions = {}): PreflightReport {
  const { config } = loaded;
  const problems: string[] = [];
  const codes = new Set<ConfigErrorCode>();
  const report: PreflightReport = {};
  if (opts.devices !== false)
    collect(problems, () => (report.devices = readDeviceSource(config.devices.file)), codes);
  // The other sections name their keys; the file (or defaults) they came from goes in front.
  const inConfig: string[] = [];
  const found = (list: readonly string[]): void => {
    inConfig.push(...list);
    if (list.length) codes.add('CELLGATE_CONFIG_INVALID');
  };
  if (opts.publisher !== false) found(publisherProblems(config.publisher, opts.env));
  if (config.downlink.enabled && config.admin.enabled)
    collect(inConfig, () => new AdminAuth(config.admin), codes);
  if (config.dtls.enabled) found(credentialProblems(config.dtls));
  if (config.state.store === 'redis')
    collect(inConfig, () => Keyring.fromFile(config.state.encryptionKeyFile), codes);
  if (config.state.store === 'redis' || downlinksUseRedis(config.downlink))
    collect(inConfig, () => redisClientOptions(config.state.redis), codes);
  if (config.radius.port !== 0) {
    try {
      new RadiusClients(config.radius.clients, loaded.baseDir);
    } catch (err) {
      found([(err as Error).message]);
    }
  }
  const source = loaded.file ? `config file ${loaded.file}` : 'config (defaults)';
  problems.push(...inConfig.map((p) => `${source}: ${p}`));
  if (problems.length)
    throw new ConfigError(problems, { code: codes.size === 1 ? [...codes][0] : 'CELLGATE_CONFIG_INVALID' });
  return report;
}
