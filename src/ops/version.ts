/** The package version, read once from package.json (found above this module, built or not). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached !== undefined) return cached;
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'cellgate' && pkg.version) return (cached = pkg.version);
    } catch {
      // Not at this level; try the next one up.
    }
  }
  return (cached = 'unknown');
}
