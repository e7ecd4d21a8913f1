/** The `http:` section: the HTTP side port (health, readiness, metrics, and the admin API when enabled). */
import { z } from 'zod';
import { portSchema } from './port.js';

export const httpSchema = z
  .strictObject({
    bind: z
      .string()
      .default('0.0.0.0')
      .describe('Address of the HTTP side port (health, readiness, metrics).'),
    port: portSchema.default(8080).describe('HTTP side port.'),
  })
  .prefault({});
