/**
 * Reuse at the command line (spawned `kie-batch enqueue`, real Redis under a unique prefix):
 * `--dry-run` counts the rows a worker would copy from the result index and estimates the rest;
 * `KIE_REUSE=off` counts none; `--no-reuse` is stored with the batch.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedger, createResultIndex, requestHash } from "../../src/ledger/index.js";
import { resultIndexKeys } from "../../src/ledger/result-index.js";
import { type TempFiles, tempFiles } from "../fixtures/manifest/temp-files.js";
import { type ChildOutput, childOutput } from "../helpers/child-output.js";
import { cleanupPrefix, REDIS_URL, testRedis, uniquePrefix } from "../helpers/redis.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kie-batch.js");
const prefix = uniquePrefix("e2e-reuse");
const redis = testRedis();
// The CLI's flavour: KIE_API_FLAVOR's default.
const index = createResultIndex(redis, { prefix, flavor: "qwen" });
const ledger = createLedger(redis, { prefix });
const hash = requestHash("a red fox", { seed: 11 })!;
let files: TempFiles;

function kieBatch(args: string[], env: Record<string, string> = {}): Promise<ChildOutput> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, REDIS_URL, KIE_QUEUE_PREFIX: prefix, LOG_LEVEL: "silent", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const output = childOutput(child);
  child.stdin.end();
  return output;
}

beforeAll(async () => {
  files = await tempFiles();
  await index.record(hash, {
    images: [{ key: "old/fox.png", bytes: 10, sha256: "a".repeat(64), contentType: "image/png" }],
    taskId: "task-1",
    batch: "old",
    rowId: "fox",
    archivedAt: Date.now(),
  });
});
afterAll(async () => {
  await redis.del(...resultIndexKeys(prefix, hash, "qwen"));
  await cleanupPrefix(redis, prefix);
  await redis.quit();
  await files.cleanup();
});

describe("kie-batch enqueue and reuse", () => {
  it("--dry-run counts the rows that would be reused; KIE_REUSE=off and --no-reuse count none", async () => {
    const file = await files.write("cat.csv", "prompt,seed\na red fox,11\na red fox,\nan owl,12\n");
    const dry = await kieBatch(["enqueue", file, "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/Would be reused:\s+1\s+\(same request and seed/);
    expect(dry.stdout).toContain("Estimated credits:  16 for 2 rows");
    const off = await kieBatch(["enqueue", file, "--dry-run"], { KIE_REUSE: "off" });
    expect(off.stdout).not.toContain("Would be reused");
    expect(off.stdout).toContain("Estimated credits:  24 for 3 rows");
    const json = await kieBatch(["enqueue", file, "--dry-run", "--no-reuse", "--json"]);
    expect(JSON.parse(json.stdout)).not.toHaveProperty("reusable");
  });

  it("--no-reuse is stored with the batch", async () => {
    const file = await files.write("fresh.csv", "prompt,seed\na red fox,11\n");
    const run = await kieBatch(["enqueue", file, "--no-reuse"]);
    expect(run.code).toBe(0);
    expect(await ledger.getBatch("fresh")).toMatchObject({ total: 1, noReuse: true });
    expect(await index.reuseOff("fresh")).toBe(true);
  });
});
