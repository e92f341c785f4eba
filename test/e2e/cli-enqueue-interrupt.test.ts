/**
 * `kie-batch enqueue` stopped by Ctrl-C: it leaves none of its temporary folders behind (a
 * million rows' copy is ~220 MB in the temporary directory, for good), says what to do, and a run
 * of the same command afterwards finishes the batch. Spawned, as a user runs it.
 */
import { spawn } from "node:child_process";
import { mkdir, readdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ledgerKeys } from "../../src/ledger/index.js";
import { makeTempFolder } from "../../src/producer/temp-folders.js";
import { type TempFiles, tempFiles } from "../fixtures/manifest/temp-files.js";
import { childOutput } from "../helpers/child-output.js";
import { cleanupPrefix, REDIS_URL, testRedis, uniquePrefix } from "../helpers/redis.js";
import { until } from "../helpers/worker-harness.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kie-batch.js");
const prefix = uniquePrefix("e2e-interrupt");
const redis = testRedis();
let files: TempFiles;

beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
  await files.cleanup();
});

const ours = async (dir: string) => (await readdir(dir)).filter((name) => name.startsWith("kie-batch-"));

describe("kie-batch enqueue interrupted", () => {
  it("by SIGINT: exits 130 with no temporary folder left; the same command then finishes the batch", async () => {
    const rows = 60_000;
    const lines = Array.from({ length: rows }, (_, i) => `r${i},a prompt of row ${i} ${"x".repeat(200)}`);
    const file = await files.write("big.csv", `id,prompt\n${lines.join("\n")}\n`);
    const tmp = join(files.dir, "tmp");
    await mkdir(tmp);
    const env = { ...process.env, REDIS_URL, KIE_QUEUE_PREFIX: prefix, LOG_LEVEL: "silent", TMPDIR: tmp };
    const child = spawn(process.execPath, [BIN, "enqueue", file], { env, stdio: ["ignore", "pipe", "pipe"] });
    const output = childOutput(child);
    await until("the run's temporary folder", async () => (await ours(tmp)).length > 0, { everyMs: 5 });
    child.kill("SIGINT");
    const stopped = await output;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain("SIGINT: stopped; rows written so far stay in the batch");
    expect(await ours(tmp)).toEqual([]);

    const again = spawn(process.execPath, [BIN, "enqueue", file], { env, stdio: ["ignore", "pipe", "pipe"] });
    const done = await childOutput(again);
    expect(done.code).toBe(0);
    expect(await ours(tmp)).toEqual([]);
    expect(Number(await redis.hget(ledgerKeys(prefix).batch("big"), "total"))).toBe(rows);
  }, 60_000);

  it("a folder a killed run left is removed by a later run once its process is gone and a day old", async () => {
    const tmp = join(files.dir, "stale");
    await mkdir(tmp);
    const dayAgo = new Date(Date.now() - 25 * 3_600_000);
    // A pid no process has (above Linux's pid_max), and this process's own.
    for (const name of ["kie-batch-rows-99999999-aaaaaa", `kie-batch-stdin-${process.pid}-bbbbbb`]) {
      await mkdir(join(tmp, name));
      await utimes(join(tmp, name), dayAgo, dayAgo);
    }
    await mkdir(join(tmp, "kie-batch-rows-99999998-cccccc")); // gone, but made a moment ago
    await mkdir(join(tmp, "someone-else"));
    const folder = await makeTempFolder(tmp, "rows");
    expect((await readdir(tmp)).sort()).toEqual(
      [
        `kie-batch-stdin-${process.pid}-bbbbbb`,
        "kie-batch-rows-99999998-cccccc",
        "someone-else",
        folder.path.slice(tmp.length + 1),
      ].sort(),
    );
    await folder.remove();
  });
});
