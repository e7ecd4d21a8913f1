/**
 * What the gateway knows about each thing's pending downlink: the shadow (desired, reported, version) and
 * its delta, the commands still to deliver, and the document built from them with its encodings, so an
 * uplink finds its downlink with one map lookup. Capped in entries and bytes; the oldest entries go first
 * (they are read again from the source when needed).
 */
import { BoundedMap } from '../collections/bounded-map.js';
import type { Command } from '../state/command-store.js';
import { isActive } from '../state/command-store.js';
import { encodeTag, type DownlinkCommand, type DownlinkDocument } from './document.js';
import type { Json, JsonObject, ShadowState } from './shadow-document.js';

/** Bytes counted per entry besides its contents. */
const ENTRY_OVERHEAD = 256;
const COMMAND_OVERHEAD = 64;

/** A document built for a thing, with its encodings as they are asked for. */
export class BuiltDocument {
  json: Buffer | undefined = undefined;
  cbor: Buffer | undefined = undefined;
  /** Bytes of the encodings cached on it. */
  encodedBytes = 0;

  constructor(
    readonly value: DownlinkDocument,
    readonly etag: Buffer,
    /** Ids of the commands it carries, in order. */
    readonly commandIds: readonly number[],
    /** When its first command expires (the document must be built again then). */
    readonly validUntil: number,
  ) {}

  get empty(): boolean {
    return this.value.desired === undefined && this.commandIds.length === 0;
  }
}

export class ThingEntry {
  /** When shadow and commands were last read from their stores (ms). */
  loadedAt = Number.NEGATIVE_INFINITY;
  /** When they must be read again (ms); -Infinity: at once. */
  staleAt = Number.NEGATIVE_INFINITY;
  loading: Promise<void> | undefined = undefined;
  /** Bumped by every invalidation, so a read that raced with a change is not taken as fresh. */
  generation = 0;
  /** Reported-state writes in flight: the entry already holds their effect and is not read again meanwhile. */
  reporting = 0;
  shadow: ShadowState | undefined = undefined;
  /** Desired fields that differ from reported; undefined when there are none. */
  delta: JsonObject | undefined = undefined;
  /** Commands still to deliver, in order. */
  commands: Command[] = [];
  /** The desired state last offered to the device, to write as reported when the device confirms it. */
  offered: { version: number; delta: JsonObject } | undefined = undefined;
  /** The tag the device confirmed last: echoing it again changes nothing and needs no read. */
  lastConfirmed: Buffer | undefined = undefined;
  /** The document for the current state; undefined when it must be built. */
  doc: BuiltDocument | undefined = undefined;
  /** Bytes the cache counts for this entry; `baseBytes` without the document's encodings. */
  bytes = ENTRY_OVERHEAD;
  baseBytes = ENTRY_OVERHEAD;

  constructor(readonly thing: string) {}

  /** Forgets the document and asks for a read from the stores. */
  invalidate(): void {
    this.generation++;
    this.staleAt = Number.NEGATIVE_INFINITY;
    this.doc = undefined;
  }

  /** Builds the document: the delta (if any) and up to `max` unexpired commands. */
  build(now: number, max: number, onBadCommand: (id: number) => void): BuiltDocument {
    const value: DownlinkDocument = {};
    const version = this.shadow?.version ?? 0;
    if (this.delta) {
      value.version = version;
      value.desired = this.delta;
    }
    const ids: number[] = [];
    let commands: DownlinkCommand[] | undefined;
    let validUntil = Number.POSITIVE_INFINITY;
    for (const c of this.commands) {
      if (ids.length >= max) break;
      if (!isActive(c) || c.expiresAt <= now) continue;
      let data: Json;
      try {
        data = JSON.parse(c.data) as Json;
      } catch {
        onBadCommand(c.id);
        continue;
      }
      (commands ??= []).push({ id: c.id, data });
      ids.push(c.id);
      if (c.expiresAt < validUntil) validUntil = c.expiresAt;
    }
    if (commands) value.commands = commands;
    const last = ids.length ? ids[ids.length - 1] : 0;
    return (this.doc = new BuiltDocument(
      value,
      encodeTag(version, this.delta !== undefined, last, ids.length),
      ids,
      validUntil,
    ));
  }

  /** Estimates the bytes the entry holds without encodings, from the size of its shadow. */
  measure(shadowBytes: number): void {
    let n = ENTRY_OVERHEAD + shadowBytes;
    for (const c of this.commands) n += COMMAND_OVERHEAD + c.data.length;
    this.baseBytes = n;
  }
}

export class ThingCache {
  /** The oldest entry is evicted first, never the one in use (it goes to the back of the line). */
  private readonly entries: BoundedMap<string, ThingEntry>;

  constructor(maxEntries: number, maxBytes: number, onCap: (cap: string, n: number) => void) {
    this.entries = new BoundedMap({
      maxEntries,
      maxBytes,
      onCap: (cap, n) => onCap(cap === 'entries' ? 'downlink_cache_entries' : 'downlink_cache_bytes', n),
    });
  }

  get size(): number {
    return this.entries.size;
  }

  get byteSize(): number {
    return this.entries.byteSize;
  }

  peek(thing: string): ThingEntry | undefined {
    return this.entries.get(thing);
  }

  /** The thing's entry, created (not yet read) when there is none. */
  get(thing: string): ThingEntry {
    let e = this.entries.get(thing);
    if (e) return e;
    e = new ThingEntry(thing);
    this.entries.set(thing, e, e.bytes);
    return e;
  }

  /** Counts an entry's size again: its contents and the encodings cached on its document. */
  resize(e: ThingEntry): void {
    const bytes = e.baseBytes + (e.doc?.encodedBytes ?? 0);
    if (this.entries.get(e.thing) !== e || bytes === e.bytes) return;
    e.bytes = bytes;
    this.entries.resize(e.thing, bytes);
  }

  clear(): void {
    this.entries.clear();
  }
}
