/** The device registry read from `devices.yaml`, reloaded when the file changes or on demand (SIGHUP). */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { watchFiles } from '../ops/file-watch.js';
import { parseYamlText } from '../config/yaml-text.js';
import { ConfigError, issueMessage } from '../config/errors.js';
import { decodeKey, deviceEntrySchema, toDevice, type Device } from './device.js';
import { MemoryRegistry } from './memory-registry.js';

/** A device file that cannot be read or does not validate; one problem per line. */
export class DeviceFileError extends ConfigError {
  override readonly name = 'DeviceFileError';
  override readonly code = 'CELLGATE_DEVICE_FILE_INVALID';
}

export interface DeviceSource {
  devices: Device[];
  /** Absolute paths of the key files the devices' `psk.keyFile` named. */
  keyFiles: string[];
}

function readKeyFile(path: string): Buffer | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  try {
    return decodeKey(text.trim());
  } catch (err) {
    return `key file ${path}: ${(err as Error).message}`;
  }
}

/** How an entry is named in messages: its position and, when it has one, its id. */
function entryName(index: number, raw: unknown): string {
  const id = (raw as { id?: unknown } | null)?.id;
  if (typeof id === 'string' && id !== '') return `device #${index + 1} (id "${id}")`;
  if (typeof id === 'number') return `device #${index + 1} (id ${id})`;
  return `device #${index + 1} (no id)`;
}

/** First entry (by position) that claimed each id, PSK identity and IP. */
class Claims {
  private readonly seen = new Map<string, string>();

  /** Undefined when `value` is new, otherwise the entry that claimed it first. */
  claim(kind: string, value: string, entry: string): string | undefined {
    const k = `${kind}\0${value}`;
    const first = this.seen.get(k);
    if (first === undefined) this.seen.set(k, entry);
    return first;
  }
}

/**
 * Reads and validates a device file and the key files it names. Every problem of the file is reported at
 * once — entries that do not validate, ids, PSK identities, certificate pins, raw public keys and IPs listed
 * twice, unreadable key files — in a DeviceFileError whose lines name the entry (position and id) and the
 * key at fault, never quoting a key.
 */
export function readDeviceSource(file: string): DeviceSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DeviceFileError(`cannot read device file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYamlText(text);
  } catch (err) {
    throw new DeviceFileError(`device file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  doc ??= [];
  if (!Array.isArray(doc))
    throw new DeviceFileError(`device file ${file}: must hold a list of devices (- id: …)`);
  const problems: string[] = [];
  const problem = (entry: string, key: string, what: string) =>
    problems.push(`device file ${file}: ${entry}: ${key}: ${what}`);
  const dir = dirname(file);
  const keyFiles: string[] = [];
  const devices: Device[] = [];
  const claims = new Claims();
  (doc as unknown[]).forEach((raw, i) => {
    const name = entryName(i, raw);
    const rawId = (raw as { id?: unknown } | null)?.id;
    if (typeof rawId === 'string' && rawId !== '') {
      const first = claims.claim('id', rawId, name);
      if (first) problem(name, 'id', `"${rawId}" is already the id of ${first}; ids must be unique`);
    }
    const result = deviceEntrySchema.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues) {
        const key = issue.path.length ? issue.path.map(String).join('.') : '(entry)';
        problem(name, key, issueMessage(issue));
      }
      return;
    }
    const entry = result.data;
    if (entry.psk) {
      const first = claims.claim('psk', entry.psk.identity, name);
      if (first)
        problem(name, 'psk.identity', `"${entry.psk.identity}" is already the PSK identity of ${first}`);
    }
    const credentials: [string, string | undefined, string][] = [
      ['x509.fingerprint', entry.x509?.fingerprint, 'certificate fingerprint'],
      ['x509.subject', entry.x509?.subject, 'certificate subject'],
      [
        entry.rpk?.publicKey ? 'rpk.publicKey' : 'rpk.fingerprint',
        entry.rpk?.publicKey ?? entry.rpk?.fingerprint,
        'raw public key',
      ],
    ];
    for (const [key, value, what] of credentials) {
      const first = value === undefined ? undefined : claims.claim(what, value, name);
      if (first)
        problem(
          name,
          key,
          `${key.endsWith('publicKey') ? 'the key' : `"${value}"`} is already the ${what} of ${first}`,
        );
    }
    for (const ip of entry.ip === undefined ? [] : Array.isArray(entry.ip) ? entry.ip : [entry.ip]) {
      const first = claims.claim('ip', ip, name);
      if (first) problem(name, 'ip', `${ip} is already claimed by ${first}`);
    }
    const keyFile = entry.psk?.keyFile;
    if (keyFile === undefined) {
      devices.push(toDevice(entry));
      return;
    }
    const path = resolve(dir, keyFile);
    keyFiles.push(path);
    const key = readKeyFile(path);
    if (typeof key === 'string') problem(name, 'psk.keyFile', key);
    else devices.push(toDevice(entry, key));
  });
  if (problems.length) throw new DeviceFileError(problems);
  return { devices, keyFiles };
}

/** Reads and validates a device file (and its key files); throws a DeviceFileError naming the entry at fault. */
export function readDeviceFile(file: string): Device[] {
  return readDeviceSource(file).devices;
}

export class FileRegistry extends MemoryRegistry {
  private unwatch?: () => void;
  private reloads = { ok: 0, rejected: 0 };
  /** Time of the last successful load, ms since the epoch. */
  loadedAt = Date.now();

  constructor(
    readonly file: string,
    private readonly log: Logger,
    private readonly watchFiles: boolean,
  ) {
    const source = readDeviceSource(file);
    super(source.devices);
    if (watchFiles) this.watchFolders(source.keyFiles);
  }

  /** Successful and rejected reloads so far. */
  get reloadCounts(): Readonly<{ ok: number; rejected: number }> {
    return this.reloads;
  }

  /** Watches the device file and its key files (re-armed on each reload: the key files may change). */
  private watchFolders(keyFiles: readonly string[]): void {
    this.unwatch?.();
    this.unwatch = watchFiles(
      [this.file, ...keyFiles],
      () => void this.reload(),
      this.log,
      'device file or its keys',
    );
  }

  override reload(): Promise<void> {
    try {
      const source = readDeviceSource(this.file);
      const change = this.replace(source.devices);
      this.reloads.ok++;
      this.loadedAt = Date.now();
      if (this.watchFiles) this.watchFolders(source.keyFiles);
      this.log.info(
        {
          devices: change.size,
          added: change.added?.length ?? 0,
          addedIds: change.added?.length ? change.added.slice(0, 20) : undefined,
          removed: change.removed.length,
          removedIds: change.removed.length ? change.removed.slice(0, 20) : undefined,
        },
        'device registry reloaded',
      );
    } catch (err) {
      this.reloads.rejected++;
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.log.error({ problems }, 'device file rejected; keeping the devices loaded before');
    }
    return Promise.resolve();
  }

  override close(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    super.close();
  }
}
