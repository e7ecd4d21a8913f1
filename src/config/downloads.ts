/** The `downloads:` section: files served read-only to devices over CoAP (firmware images), and their cache. */
import { z } from 'zod';

export const downloadsSchema = z
  .strictObject({
    dir: z.string().default('files').describe('Directory served read-only at coap(s)://host/fw/<name>.'),
    cacheBytes: z
      .number()
      .int()
      .min(0)
      .default(32 * 1024 * 1024)
      .describe('Bytes of download files kept in memory (shared by all devices).'),
    maxFileBytes: z
      .number()
      .int()
      .min(1)
      .default(16 * 1024 * 1024)
      .describe('Largest file served (block-wise transfer NUM is 20 bits).'),
  })
  .prefault({});
