/**
 * `GET /fw/<name>`: files from one folder, read-only, served block-wise (the endpoint slices Block2). No path
 * can leave the folder: segments are checked and the resolved real path must stay inside the folder's real
 * path (so a symlink cannot point out of it). Files are cached in memory, shared by all devices, capped in
 * bytes; a changed file (size, mtime or inode) is read again and gets a new ETag.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath, stat, readdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Code, ContentFormat, Option } from '../coap/constants.js';
import type { Exchange } from '../coap/exchange.js';
import type { Logger } from '../ops/logger.js';

interface CachedFile {
  version: string;
  data: Buffer;
  etag: Buffer;
}

export interface DownloadOptions {
  dir: string;
  cacheBytes: number;
  maxFileBytes: number;
}

function validSegment(s: string): boolean {
  return s.length > 0 && s !== '.' && s !== '..' && !/[/\\\0]/.test(s);
}

export class Downloads {
  private readonly cache = new Map<string, CachedFile>();
  private cachedBytes = 0;
  private rootReal: Promise<string> | undefined;

  constructor(
    private readonly opts: DownloadOptions,
    private readonly log: Logger,
    private readonly onCap: (n: number) => void,
  ) {}

  get cacheEntries(): number {
    return this.cache.size;
  }

  get cacheBytes(): number {
    return this.cachedBytes;
  }

  private root(): Promise<string> {
    if (!this.rootReal) {
      this.rootReal = realpath(this.opts.dir);
      // A folder that is missing now may appear later: do not remember the failure.
      this.rootReal.catch(() => (this.rootReal = undefined));
    }
    return this.rootReal;
  }

  /** Serves `fw/<segments…>`; `segments` excludes the leading `fw`. */
  serve(ex: Exchange, segments: readonly string[]): void {
    if (segments.length === 0 || !segments.every(validSegment)) {
      ex.respond({ code: Code.NOT_FOUND, payload: Buffer.from('No such file') });
      return;
    }
    this.load(segments).then(
      (file) => {
        if (!file) return ex.respond({ code: Code.NOT_FOUND, payload: Buffer.from('No such file') });
        if (file === 'too-large') {
          return ex.respond({
            code: Code.INTERNAL_SERVER_ERROR,
            payload: Buffer.from('File too large to serve'),
          });
        }
        if (ex.request.opaques(Option.ETAG).some((tag) => tag.equals(file.etag))) {
          return ex.respond({ code: Code.VALID, etag: file.etag });
        }
        ex.respond({
          code: Code.CONTENT,
          payload: file.data,
          contentFormat: ContentFormat.OCTET_STREAM,
          etag: file.etag,
        });
      },
      (err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'download failed');
        ex.respond({ code: Code.INTERNAL_SERVER_ERROR, payload: Buffer.from('Cannot read file') });
      },
    );
  }

  private async load(segments: readonly string[]): Promise<CachedFile | 'too-large' | undefined> {
    const root = await this.root();
    let real: string;
    try {
      real = await realpath(join(root, ...segments));
    } catch {
      return undefined;
    }
    if (!real.startsWith(root + sep)) return undefined;
    const st = await stat(real);
    if (!st.isFile()) return undefined;
    if (st.size > this.opts.maxFileBytes) return 'too-large';
    const version = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(real);
    if (hit && hit.version === version) {
      // Most recently used at the back.
      this.cache.delete(real);
      this.cache.set(real, hit);
      return hit;
    }
    const data = await readFile(real);
    const etag = createHash('sha256').update(version).update(data).digest().subarray(0, 8);
    const file = { version, data, etag };
    if (hit) this.forget(real, hit);
    if (data.length <= this.opts.cacheBytes) {
      this.cache.set(real, file);
      this.cachedBytes += data.length;
      let evicted = 0;
      for (const [k, f] of this.cache) {
        if (this.cachedBytes <= this.opts.cacheBytes) break;
        this.forget(k, f);
        evicted++;
      }
      if (evicted) this.onCap(evicted);
    }
    return file;
  }

  private forget(key: string, f: CachedFile): void {
    this.cache.delete(key);
    this.cachedBytes -= f.data.length;
  }

  /** Names of the files at the top of the folder (for /.well-known/core), at most `limit`. */
  async list(limit: number): Promise<{ name: string; size: number }[]> {
    const root = await this.root();
    const out: { name: string; size: number }[] = [];
    for (const e of await readdir(root, { withFileTypes: true })) {
      if (out.length >= limit) break;
      if (!e.isFile()) continue;
      out.push({ name: e.name, size: (await stat(join(root, e.name))).size });
    }
    return out;
  }
}
