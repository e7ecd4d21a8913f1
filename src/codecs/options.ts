/** Codec options from `devices.yaml`, checked against each codec's schema with messages naming the field. */
import type { z } from 'zod';

export class CodecOptionsError extends Error {
  override readonly name = 'CodecOptionsError';
}

/** Parses a codec's options; throws a CodecOptionsError listing each bad field. */
export function parseCodecOptions<T extends z.ZodType>(
  codec: string,
  schema: T,
  options: unknown,
): z.infer<T> {
  const result = schema.safeParse(options ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map(
    (i) => `${i.path.length ? i.path.join('.') : '(options)'}: ${i.message}`,
  );
  throw new CodecOptionsError(`${codec} codec options: ${lines.join('; ')}`);
}
