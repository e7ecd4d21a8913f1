/** Codec options from the device file, checked against a codec's schema. */
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { CodecOptionsError, parseCodecOptions } from '../../src/codecs/options.js';

const schema = z.strictObject({ format: z.enum(['json', 'cbor']), fport: z.number().int().optional() });

describe('codec options', () => {
  it('returns the parsed options', () => {
    expect(parseCodecOptions('demo', schema, { format: 'cbor', fport: 2 })).toEqual({
      format: 'cbor',
      fport: 2,
    });
  });

  it('throws CELLGATE_CODEC_OPTIONS_INVALID naming each bad field, a missing one plainly', () => {
    let err: unknown;
    try {
      parseCodecOptions('demo', schema, { fport: 1.5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CodecOptionsError);
    expect(err).toMatchObject({ code: 'CELLGATE_CODEC_OPTIONS_INVALID', name: 'CodecOptionsError' });
    expect((err as Error).message).toMatch(/^demo codec options: "format" is required; fport: /);
  });
});
