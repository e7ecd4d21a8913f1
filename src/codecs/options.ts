/** Codec options from `devices.yaml`, checked against each codec's schema with messages naming the field. */
import type { z } from 'zod';

/** A codec's options from the device file do not fit its schema; the message names each bad field. */
export class CodecOptionsError extends Error {
  override readonly name = 'CodecOptionsError';
  readonly code = 'CELLGATE_CODEC_OPTIONS_INVALID';
}

/** Parses a codec's options; throws a CodecOptionsError listing each bad field. */
export function parseCodecOptions<T extends z.ZodType>(
  codec: string,
  schema: T,
  options: unknown,
): z.infer<T> {
  const given = (options ?? {}) as Record<string, unknown>;
  const result = schema.safeParse(given);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => {
    const key = i.path.join('.');
    // A required option left out is said plainly, not as a type mismatch with undefined.
    if (i.path.length === 1 && typeof given === 'object' && given[String(i.path[0])] === undefined)
      return `"${key}" is required`;
    return `${key || '(options)'}: ${i.message}`;
  });
  throw new CodecOptionsError(`${codec} codec options: ${lines.join('; ')}`);
}
