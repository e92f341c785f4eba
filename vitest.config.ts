import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Fails a file that leaves a server, a Redis connection or a child process open.
    setupFiles: ["test/setup/leak-guard.ts"],
    pool: "forks",
    // Two cores: integration tests share one Redis (each with its own prefix) and spawn processes.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    env: { AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED", LOG_LEVEL: "silent" },
  },
});
