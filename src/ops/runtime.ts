/** Process-wide runtime settings from the `runtime` config section, applied once at start-up. */
import { setFlagsFromString } from 'node:v8';
import type { z } from 'zod';
import type { runtimeSchema } from '../config/runtime.js';

export type RuntimeConfig = z.infer<typeof runtimeSchema>;

export function applyRuntime(config: RuntimeConfig): void {
  // V8 reads this each time it sets the next old-generation limit, so setting it at start-up takes effect.
  if (config.heapGrowingPercent > 0)
    setFlagsFromString(`--heap-growing-percent=${config.heapGrowingPercent}`);
}
