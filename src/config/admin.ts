/** The `admin` section: the local admin API on the HTTP side port (shadows and command queues). */
import { z } from 'zod';

export const adminSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Serve the admin API (/things/{thing}/shadow, /things/{thing}/commands) on the HTTP side port.',
      ),
    token: z
      .string()
      .default('')
      .describe('Bearer token the admin API accepts (`Authorization: Bearer <token>`); prefer `tokenFile`.'),
    tokenFile: z.string().default('').describe('File holding the bearer token (e.g. a mounted Secret).'),
    sigv4: z
      .strictObject({
        accessKeyId: z
          .string()
          .default('')
          .describe('Access key id whose SigV4 signatures the admin API accepts (for the AWS CLI and SDKs).'),
        secretAccessKey: z
          .string()
          .default('')
          .describe('Its secret access key; prefer `secretAccessKeyFile`.'),
        secretAccessKeyFile: z.string().default('').describe('File holding the secret access key.'),
      })
      .prefault({}),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(64 * 1024)
      .describe('Largest request body the admin API reads.'),
  })
  .describe(
    'Without a token or SigV4 key the admin API answers only requests from the loopback address; with one, every request must present it.',
  )
  .prefault({});

export type AdminConfig = z.infer<typeof adminSchema>;
