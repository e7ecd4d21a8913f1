/**
 * The `memory` shadow source (the embedded default): shadows in this process, lost on restart. Capped in
 * things and bytes; a write that would pass a cap is refused (desired state is never evicted).
 */
import { BoundedMap } from '../collections/bounded-map.js';
import { ApiError } from '../state/api-error.js';
import {
  applyShadowUpdate,
  stateBytes,
  unixSeconds,
  type ShadowState,
  type ShadowUpdate,
  type UpdateAnswer,
} from './shadow-document.js';
import { ChangeListeners } from '../state/changes.js';
import type { ShadowSource } from './shadow-source.js';

export interface MemoryShadowOptions {
  maxThings: number;
  maxBytes: number;
  maxDocumentBytes: number;
  onCap: (cap: string) => void;
}

interface Held {
  state: ShadowState;
  bytes: number;
}

export class MemoryShadowSource implements ShadowSource {
  readonly kind = 'memory';
  private readonly shadows = new Map<string, Held>();
  /**
   * Versions of deleted shadows: a shadow created again carries on from there. Capped like the shadows (the
   * oldest is forgotten, silently: it costs a version number carrying on, nothing else).
   */
  private readonly deletedVersions: BoundedMap<string, number>;
  private readonly changes = new ChangeListeners();
  private bytes = 0;

  constructor(private readonly opts: MemoryShadowOptions) {
    this.deletedVersions = new BoundedMap({ maxEntries: opts.maxThings });
  }

  get size(): number {
    return this.shadows.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  get(thing: string): Promise<ShadowState | undefined> {
    return Promise.resolve(this.shadows.get(thing)?.state);
  }

  update(thing: string, update: ShadowUpdate): Promise<UpdateAnswer> {
    try {
      return Promise.resolve(this.updateNow(thing, update));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private updateNow(thing: string, update: ShadowUpdate): UpdateAnswer {
    const held = this.shadows.get(thing);
    const { next, answer } = applyShadowUpdate(
      held?.state,
      this.deletedVersions.get(thing) ?? 0,
      update,
      unixSeconds(),
      this.opts.maxDocumentBytes,
    );
    const bytes = stateBytes(next) + thing.length;
    if (!held && this.shadows.size >= this.opts.maxThings) {
      this.opts.onCap('downlink_memory_shadows');
      throw new ApiError(
        503,
        'ServiceUnavailableException',
        'Shadow store full (downlink.shadow.memory.maxThings)',
        update.clientToken,
      );
    }
    if (this.bytes - (held?.bytes ?? 0) + bytes > this.opts.maxBytes) {
      this.opts.onCap('downlink_memory_shadow_bytes');
      throw new ApiError(
        503,
        'ServiceUnavailableException',
        'Shadow store full (downlink.shadow.memory.maxBytes)',
        update.clientToken,
      );
    }
    this.bytes += bytes - (held?.bytes ?? 0);
    this.shadows.set(thing, { state: next, bytes });
    this.deletedVersions.delete(thing);
    this.changes.emit(thing);
    return answer;
  }

  delete(thing: string): Promise<{ version: number; timestamp: number }> {
    const held = this.shadows.get(thing);
    if (!held)
      return Promise.reject(new ApiError(404, 'ResourceNotFoundException', `No shadow exists for ${thing}`));
    this.shadows.delete(thing);
    this.bytes -= held.bytes;
    this.deletedVersions.set(thing, held.state.version);
    this.changes.emit(thing);
    return Promise.resolve({ version: held.state.version, timestamp: unixSeconds() });
  }

  onChange(listener: (thing: string) => void): void {
    this.changes.add(listener);
  }

  close(): Promise<void> {
    this.shadows.clear();
    this.deletedVersions.clear();
    this.bytes = 0;
    return Promise.resolve();
  }
}
