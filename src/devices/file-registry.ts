/** The device registry read from `devices.yaml`, reloaded when the file changes or on demand (SIGHUP). */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parseYamlText } from '../config/yaml-text.js';
import { decodeKey, deviceFileSchema, toDevice, type Device } from './device.js';
import { MemoryRegistry } from './index.js';

export class DeviceFileError extends Error {
  override readonly name = 'DeviceFileError';
}

export interface DeviceSource {
  devices: Device[];
  /** Absolute paths of the key files the devices' `psk.keyFile` named. */
  keyFiles: string[];
}

function readKeyFile(path: string, where: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DeviceFileError(
      `${where}: cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  try {
    return decodeKey(text.trim());
  } catch (err) {
    throw new DeviceFileError(`${where}: key file ${path}: ${(err as Error).message}`);
  }
}

/**
 * Reads and validates a device file and the key files it names; throws a DeviceFileError naming the entry
 * and key at fault (never quoting a key).
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
  const result = deviceFileSchema.safeParse(doc ?? []);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const [index, ...rest] = i.path;
      const where =
        typeof index === 'number' ? `device #${index + 1}${rest.length ? '.' + rest.join('.') : ''}` : '';
      return `${where || '(top level)'}: ${i.message}`;
    });
    throw new DeviceFileError(`invalid device file ${file}:\n  ${lines.join('\n  ')}`);
  }
  const dir = dirname(file);
  const keyFiles: string[] = [];
  const devices = result.data.map((entry, i) => {
    const keyFile = entry.psk?.keyFile;
    if (keyFile === undefined) return toDevice(entry);
    const path = resolve(dir, keyFile);
    keyFiles.push(path);
    return toDevice(entry, readKeyFile(path, `device file ${file}: device #${i + 1}.psk.keyFile`));
  });
  return { devices, keyFiles };
}

/** Reads and validates a device file (and its key files); throws a DeviceFileError naming the entry at fault. */
export function readDeviceFile(file: string): Device[] {
  return readDeviceSource(file).devices;
}

export class FileRegistry extends MemoryRegistry {
  /** Folder → its watcher: the device file's folder and the folders of its key files. */
  private readonly watchers = new Map<string, FSWatcher>();
  private debounce?: NodeJS.Timeout;
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

  /**
   * Watches the folders, not the files: editors and Kubernetes Secret / ConfigMap updates replace files
   * (an atomic swap of the `..data` link) rather than write them.
   */
  private watchFolders(keyFiles: readonly string[]): void {
    const wanted = new Map<string, Set<string>>();
    for (const f of [this.file, ...keyFiles]) {
      const names = wanted.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      wanted.set(dirname(f), names);
    }
    for (const [dir, w] of this.watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      this.watchers.get(dir)?.close();
      try {
        const w = watch(dir, (_event, changed) => {
          if (changed !== null && !names.has(String(changed)) && !String(changed).startsWith('..')) return;
          clearTimeout(this.debounce);
          this.debounce = setTimeout(() => void this.reload(), 200);
          this.debounce.unref();
        });
        w.unref();
        this.watchers.set(dir, w);
      } catch (err) {
        this.log.warn({ err, dir }, 'cannot watch the device file or its keys; reload with SIGHUP');
      }
    }
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
          removed: change.removed.length,
          removedIds: change.removed.length ? change.removed.slice(0, 20) : undefined,
        },
        'device registry reloaded',
      );
    } catch (err) {
      this.reloads.rejected++;
      this.log.error(
        { err: (err as Error).message },
        'device file rejected; keeping the devices loaded before',
      );
    }
    return Promise.resolve();
  }

  override close(): void {
    clearTimeout(this.debounce);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    super.close();
  }
}
