import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    // The addon is native (LibTorch, its own inference thread): separate processes, not worker threads.
    pool: 'forks',
  },
});
