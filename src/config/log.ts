/** The `log:` section: how much the gateway logs. */
import { z } from 'zod';

export const logSchema = z
  .strictObject({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Log level (JSON lines on stdout).'),
  })
  .prefault({});
