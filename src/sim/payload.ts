/**
 * Uplink payloads for the simulator. A spec is one of:
 *   text:<template> (or plain text)  with {id} (device id), {i} (device number), {seq} (uplink number) and
 *                                     {ts} (ms since the epoch) filled in per uplink
 *   hex:<hex digits> | base64:<data>  fixed bytes
 *   random:<n>                        n random bytes per uplink
 *   @<file>                           the file's bytes
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface PayloadContext {
  id: string;
  i: number;
  seq: number;
}

export type PayloadSource = (ctx: PayloadContext) => Buffer;

export const DEFAULT_PAYLOAD = 'text:{"id":"{id}","seq":{seq},"ts":{ts}}';

/** Parses a payload spec; throws an Error that names the problem. */
export function payloadSource(spec: string): PayloadSource {
  if (spec.startsWith('@')) {
    const bytes = readFileSync(spec.slice(1));
    return () => bytes;
  }
  if (spec.startsWith('hex:')) {
    const body = spec.slice(4);
    if (!/^([0-9a-fA-F]{2})*$/.test(body))
      throw new Error('--payload hex: needs an even number of hex digits');
    const bytes = Buffer.from(body, 'hex');
    return () => bytes;
  }
  if (spec.startsWith('base64:')) {
    const body = spec.slice(7);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new Error('--payload base64: is not valid base64');
    const bytes = Buffer.from(body, 'base64');
    return () => bytes;
  }
  if (spec.startsWith('random:')) {
    const n = Number(spec.slice(7));
    if (!Number.isInteger(n) || n < 0 || n > 1024 * 1024)
      throw new Error('--payload random:<n> needs 0 ≤ n ≤ 1048576');
    return () => randomBytes(n);
  }
  const template = spec.startsWith('text:') ? spec.slice(5) : spec;
  if (!/\{(id|i|seq|ts)\}/.test(template)) {
    const bytes = Buffer.from(template);
    return () => bytes;
  }
  return (ctx) =>
    Buffer.from(
      template.replace(/\{(id|i|seq|ts)\}/g, (_, k: string) =>
        k === 'id' ? ctx.id : k === 'i' ? String(ctx.i) : k === 'seq' ? String(ctx.seq) : String(Date.now()),
      ),
    );
}
