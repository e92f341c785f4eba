import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLedger, type Ledger } from "../../src/ledger/index.js";
import { cleanupPrefix, REDIS_URL, testRedis, uniquePrefix } from "../helpers/redis.js";
import { moveRow, newRow } from "../integration/ops-helpers.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `kie-batch ...` as a user would; it must exit by itself. */
function cli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "kie-batch.js"), ...args], {
      cwd: ROOT,
      env: { ...process.env, KIE_API_KEY: "", LOG_LEVEL: "silent", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let redis: Redis;
let ledger: Ledger;
let prefix: string;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  redis = testRedis();
  prefix = uniquePrefix("cli-ops");
  ledger = createLedger(redis, { prefix });
  dir = await mkdtemp(join(tmpdir(), "cli-ops-"));
  env = { REDIS_URL, KIE_QUEUE_PREFIX: prefix };
  await ledger.addRows(
    "b1",
    [
      newRow("r1", { prompt: "一只红色的狐狸", metadata: { 作者: "李白" } }),
      newRow("r2", { prompt: "=cmd|' /C calc'!A0" }),
      newRow("r3"),
    ],
    { file: "prompts.csv" },
  );
  await moveRow(ledger, "b1", "r1", "archived", { spent: 8 });
  await moveRow(ledger, "b1", "r2", "failed", { error: "generation failed" });
  await moveRow(ledger, "b1", "r3", "generating");
  await ledger.addRows("done", [newRow("x"), newRow("y")]);
  await moveRow(ledger, "done", "x", "archived");
  await moveRow(ledger, "done", "y", "failed");
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe("kie-batch operator commands (spawned CLI, real Redis)", () => {
  it("status BATCH --json prints the batch's counts and credits", async () => {
    const run = await cli(["status", "b1", "--json"], env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      batch: "b1",
      total: 3,
      queued: 0,
      generating: 1,
      archived: 1,
      failed: 1,
      creditsEstimated: 24,
      creditsSpent: 8,
      paused: null,
      finished: false,
    });
  });

  it("results --format csv --out writes the file, Chinese intact and formulas defused", async () => {
    const file = join(dir, "b1.csv");
    const run = await cli(["results", "b1", "--format", "csv", "--out", file], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`3 rows written to ${file}`);
    const table: string[][] = parse(await readFile(file, "utf8"));
    expect(table[0]?.slice(0, 4)).toEqual(["id", "line", "prompt", "status"]);
    expect(table[0]).toContain("作者");
    expect(table.slice(1).map((r) => [r[0], r[3]])).toEqual([
      ["r1", "archived"],
      ["r2", "failed"],
      ["r3", "pending"],
    ]);
    expect(table[1]?.[2]).toBe("一只红色的狐狸");
    expect(table[2]?.[2]).toBe("'=cmd|' /C calc'!A0");
    expect(await readdir(dir)).toEqual(["b1.csv"]);
  });

  it("status --wait of a finished batch with a failed row exits 3", async () => {
    const run = await cli(["status", "done", "--wait"], env);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("1/2 archived · 1 failed");
  });

  it("an unknown batch exits 2 with a message naming it", async () => {
    const commands = [
      ["status", "nope"],
      ["results", "nope"],
      ["retry", "nope"],
      ["cancel", "nope"],
      ["budget", "nope", "5"],
    ];
    const runs = await Promise.all(commands.map((args) => cli(args, env)));
    runs.forEach((run, i) => {
      expect(run.code, commands[i]!.join(" ")).toBe(2);
      expect(run.stderr).toContain('unknown batch "nope"');
      expect(run.stderr).not.toContain("    at ");
    });
  });

  it("Redis unreachable exits 1, naming the URL without its password", async () => {
    const url = "redis://:s3cret-pa55@127.0.0.1:1";
    const commands = [["status"], ["results", "b1"], ["pause"]];
    const runs = await Promise.all(commands.map((args) => cli(args, { ...env, REDIS_URL: url })));
    runs.forEach((run, i) => {
      expect(run.code, commands[i]!.join(" ")).toBe(1);
      expect(run.stderr).toContain("Redis is not answering at redis://:***@127.0.0.1:1");
      expect(run.stderr + run.stdout).not.toContain("s3cret-pa55");
    });
  });
});
