/**
 * Watches files for replacement and calls back once a burst of changes settles. Folders are watched, not
 * the files: editors and Kubernetes Secret / ConfigMap updates replace files (an atomic swap of the `..data`
 * link) rather than write them.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from './logger.js';

const SETTLE_MS = 200;

/** Starts watching `files`; returns the function that stops. */
export function watchFiles(
  files: readonly string[],
  onChange: () => void,
  log: Logger,
  what: string,
): () => void {
  const wanted = new Map<string, Set<string>>();
  for (const f of files) {
    const names = wanted.get(dirname(f)) ?? new Set<string>();
    names.add(basename(f));
    wanted.set(dirname(f), names);
  }
  let settle: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of wanted) {
    try {
      const w = watch(dir, (_event, changed) => {
        if (changed !== null && !names.has(String(changed)) && !String(changed).startsWith('..')) return;
        clearTimeout(settle);
        settle = setTimeout(onChange, SETTLE_MS);
        settle.unref();
      });
      w.unref();
      watchers.push(w);
    } catch (err) {
      log.warn({ err, dir }, `cannot watch the ${what}; reload with SIGHUP`);
    }
  }
  return () => {
    clearTimeout(settle);
    for (const w of watchers) w.close();
  };
}
