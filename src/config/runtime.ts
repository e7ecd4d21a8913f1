import { z } from 'zod';

export const runtimeSchema = z
  .strictObject({
    heapGrowingPercent: z
      .number()
      .int()
      .min(0)
      .max(400)
      .default(50)
      .describe(
        'How far (percent) the V8 old generation may grow past the live heap before a full garbage collection. ' +
          'Caches that churn under load (deduplication at tens of thousands of requests a second) leave their ' +
          'garbage there: a lower value keeps resident memory flat for a little CPU. 0 leaves V8’s own heuristic.',
      ),
  })
  .prefault({});
