/**
 * The leak guard (test/setup/leak-guard.ts) fails a file that leaves a server or a Redis
 * connection open, and passes one that closes them in afterAll. Each fixture runs in a vitest of
 * its own, spawned as a user would, with the fixtures' config (they are outside the suite's
 * include, so only this test runs them).
 */
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const CONFIG = join(ROOT, "test", "fixtures", "leak", "vitest.config.ts");

function runFixture(name: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [VITEST, "run", "--config", CONFIG, name],
      { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe("a test file that leaves handles open", () => {
  it("fails, naming the server's port and the Redis connection", async () => {
    const { code, output } = await runFixture("leaves-open.fixture.ts");
    const port = /LEAK_FIXTURE_PORT=(\d+)/.exec(output)?.[1];
    expect(port, output).toBeDefined();
    expect(code, output).toBe(1);
    expect(output).toContain(`test left open: 1 TCP server on :${port}, 1 Redis connection`);
  });

  it("passes when it closes them in afterAll, even without awaiting the close", async () => {
    const { code, output } = await runFixture("closes.fixture.ts");
    expect(code, output).toBe(0);
    expect(output).not.toContain("test left open");
  });
});
