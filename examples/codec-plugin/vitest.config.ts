// The plugin's own test configuration: with it, `npm test` runs these tests wherever the folder is copied,
// and never picks up the configuration of a project the folder sits in.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
  },
});
