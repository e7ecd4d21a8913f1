/** Writes a file into a fresh temporary folder, for tests that read configuration or device files from disk. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes `text` to `name` in a new folder under the system's temporary folder and returns its path. */
export function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-config-'));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
