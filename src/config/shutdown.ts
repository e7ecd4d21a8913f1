/** The `shutdown:` section: how the gateway drains on SIGTERM (rolling updates, scale-in, node drains). */
import { z } from 'zod';

export const shutdownSchema = z
  .strictObject({
    delayMs: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(0)
      .describe(
        'After SIGTERM, keep serving normally (while /readyz reports not ready) this long before refusing new exchanges, so the load balancer stops sending new flows first.',
      ),
    drainTimeoutMs: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(10_000)
      .describe(
        'Longest wait for exchanges in flight to be answered and for separate responses to be acknowledged.',
      ),
    deadlineMs: z
      .number()
      .int()
      .min(100)
      .max(3_600_000)
      .default(25_000)
      .describe(
        'The process exits at the latest this long after SIGTERM, whatever is still pending (keep it below the pod’s terminationGracePeriodSeconds).',
      ),
    retryAfterSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(5)
      .describe('Max-Age of the 5.03 answer given to new requests while draining.'),
  })
  .refine((s) => s.delayMs + s.drainTimeoutMs < s.deadlineMs, {
    message: 'delayMs + drainTimeoutMs must be less than deadlineMs (the publisher needs time to close)',
  })
  .prefault({});

export type ShutdownConfig = z.infer<typeof shutdownSchema>;
