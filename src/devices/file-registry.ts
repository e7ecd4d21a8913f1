/** The device registry read from `devices.yaml`, reloaded when the file changes or on demand (SIGHUP). */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { deviceFileSchema, toDevice, type Device } from './device.js';
import { MemoryRegistry } from './index.js';

export class DeviceFileError extends Error {
  override readonly name = 'DeviceFileError';
}

/** Reads and validates a device file; throws a DeviceFileError naming the entry and key at fault. */
export function readDeviceFile(file: string): Device[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DeviceFileError(`cannot read device file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
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
  return result.data.map(toDevice);
}

export class FileRegistry extends MemoryRegistry {
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;

  constructor(
    readonly file: string,
    private readonly log: Logger,
    watchFile: boolean,
  ) {
    super(readDeviceFile(file));
    if (watchFile) this.startWatching();
  }

  private startWatching(): void {
    // Watch the folder: editors and Kubernetes Secret updates replace the file rather than write it.
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), (_event, changed) => {
        if (changed !== null && changed !== name && !String(changed).startsWith('..')) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), 200);
        this.debounce.unref();
      });
      this.watcher.unref();
    } catch (err) {
      this.log.warn({ err, file: this.file }, 'cannot watch the device file; reload with SIGHUP');
    }
  }

  override reload(): Promise<void> {
    try {
      const change = this.replace(readDeviceFile(this.file));
      this.log.info({ devices: change.size, removed: change.removed.length }, 'device registry reloaded');
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'device file rejected; keeping the devices loaded before',
      );
    }
    return Promise.resolve();
  }

  override close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
    super.close();
  }
}
