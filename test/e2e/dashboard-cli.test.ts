import { type ChildProcessByStdio, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { childOutput } from "../helpers/child-output.js";
import { REDIS_URL, uniquePrefix } from "../helpers/redis.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOKEN = "cli-dashboard-token-0123456789";
const running: ChildProcessByStdio<null, Readable, Readable>[] = [];

function dashboard(args: string[], env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    [join(ROOT, "bin", "kie-batch.js"), "dashboard", "--port", "0", ...args],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        REDIS_URL,
        KIE_QUEUE_PREFIX: uniquePrefix("dash-cli"),
        KIE_API_KEY: "",
        KIE_DASHBOARD_TOKEN: "",
        LOG_LEVEL: "silent",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  running.push(child);
  return child;
}

afterAll(() => {
  for (const child of running) if (child.exitCode === null) child.kill("SIGKILL");
});

describe("kie-batch dashboard (spawned)", () => {
  it("refuses a non-loopback host, and actions, without a token (exit 2, before connecting)", async () => {
    const open = await childOutput(dashboard(["--host", "0.0.0.0"], { REDIS_URL: "redis://127.0.0.1:1" }));
    expect(open.code).toBe(2);
    expect(open.stderr).toContain("listening on 0.0.0.0 needs a token");
    const actions = await childOutput(dashboard(["--allow-actions"]));
    expect(actions.code).toBe(2);
    expect(actions.stderr).toContain("--allow-actions needs a token");
    const proxies = await childOutput(
      dashboard(["--trust-proxy", "one"], { REDIS_URL: "redis://127.0.0.1:1" }),
    );
    expect(proxies.code).toBe(2);
    expect(proxies.stderr).toContain('--trust-proxy: expected a whole number from 0 to 10, got "one"');
  });

  it("with KIE_DASHBOARD_TOKEN, serves only requests that carry it, and stops on SIGTERM", async () => {
    const child = dashboard([], { KIE_DASHBOARD_TOKEN: TOKEN });
    const output = childOutput(child);
    const url = await new Promise<string>((resolve, reject) => {
      let seen = "";
      child.stdout.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /dashboard: (http:\/\/\S+\/)/.exec(seen);
        if (match) resolve(match[1]!);
      });
      child.on("close", () => reject(new Error(`dashboard exited: ${seen}`)));
    });
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    child.kill("SIGTERM");
    const done = await output;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("token required");
    expect(done.stdout + done.stderr).not.toContain(TOKEN);
  });
});
