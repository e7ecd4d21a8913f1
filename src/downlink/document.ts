/**
 * The downlink document a device receives, and its entity tag.
 *
 * Document (JSON, CBOR, or the device codec's encoding of the same object):
 *
 *   { "version": 12, "desired": { …fields to change… }, "commands": [ { "id": 1732000000, "data": … } ] }
 *
 * `version` and `desired` are present when desired state differs from reported state (`desired` holds only the
 * differing fields, as the shadow's delta does); `commands` when commands are waiting (at most
 * `downlink.commands.maxPerResponse`, oldest first). A document with nothing to do is `{}`.
 *
 * ETag (8 bytes, big-endian): the shadow version (uint32), the low 24 bits of the last command's id, and one
 * byte whose top bit says whether `desired` is present and whose low 7 bits count the commands. The device
 * echoes it (ETag option or `applied=<hex>` in the query of its next request)
 * to confirm what it applied.
 */
import type { Json, JsonObject } from './shadow-document.js';

export interface DownlinkCommand {
  id: number;
  data: Json;
}

export interface DownlinkDocument {
  version?: number;
  desired?: JsonObject;
  commands?: DownlinkCommand[];
}

export interface DownlinkTag {
  /** Shadow version, modulo 2^32. */
  version: number;
  /** Low 24 bits of the last command's id (0 without commands). */
  lastCommand: number;
  /** Whether the document carries desired state. */
  desired: boolean;
  /** Number of commands in the document. */
  commands: number;
}

export const TAG_BYTES = 8;

const DESIRED_BIT = 0x80;

export function encodeTag(
  version: number,
  desired: boolean,
  lastCommandId: number,
  commands: number,
): Buffer {
  const b = Buffer.allocUnsafe(TAG_BYTES);
  b.writeUInt32BE(version >>> 0, 0);
  b.writeUIntBE(lastCommandId & 0xffffff, 4, 3);
  b[7] = (desired ? DESIRED_BIT : 0) | (commands & 0x7f);
  return b;
}

/** Reads an echoed tag; undefined when it is not one of ours. */
export function decodeTag(b: Buffer | undefined): DownlinkTag | undefined {
  if (b === undefined || b.length !== TAG_BYTES) return undefined;
  return {
    version: b.readUInt32BE(0),
    lastCommand: b.readUIntBE(4, 3),
    desired: (b[7] & DESIRED_BIT) !== 0,
    commands: b[7] & 0x7f,
  };
}

/** Reads a tag written in hex (the `applied=` query parameter). */
export function tagFromHex(hex: string | undefined): Buffer | undefined {
  if (hex === undefined || hex.length !== TAG_BYTES * 2 || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}

/** Whether a command's id matches a tag's `lastCommand`. */
export function matchesLastCommand(id: number, tag: DownlinkTag): boolean {
  return (id & 0xffffff) === tag.lastCommand;
}
