/**
 * `kie-batch enqueue` as a user runs it: a spawned process, real Redis under a unique prefix, no
 * TTY (so no progress line), output and exit codes as the shell sees them.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TempFiles, tempFiles } from "../fixtures/manifest/temp-files.js";
import { type ChildOutput, childOutput } from "../helpers/child-output.js";
import { cleanupPrefix, keysWithPrefix, REDIS_URL, testRedis, uniquePrefix } from "../helpers/redis.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "kie-batch.js");
const prefix = uniquePrefix("e2e-enqueue");
const redis = testRedis();
let files: TempFiles;

function kieBatch(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<ChildOutput> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, REDIS_URL, KIE_QUEUE_PREFIX: prefix, LOG_LEVEL: "silent", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const output = childOutput(child);
  child.stdin.end(options.stdin ?? "");
  return output;
}

beforeAll(async () => {
  files = await tempFiles();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
  await files.cleanup();
});

describe("kie-batch enqueue", () => {
  it("enqueues a file, prints the summary, exits 0; a second run enqueues nothing", async () => {
    const file = await files.write(
      "summer-shoot.csv",
      "prompt,seed,steps\na beach,1,20\na pier,2,20\na beach,1,20\n",
    );
    const first = await kieBatch(["enqueue", file]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("Batch:              summer-shoot  (from ");
    expect(first.stdout).toContain("Rows read:          3\n");
    expect(first.stdout).toContain("Enqueued:           2\n");
    expect(first.stdout).toContain("Duplicates:         1  (already in the batch or repeated in the file");
    expect(first.stdout).toContain(
      '"steps" is not a parameter and is kept as metadata; did you mean "num_inference_steps"?',
    );
    expect(first.stdout).toContain("Estimated credits:  16 for the 2 rows enqueued");
    expect(first.stdout).toMatch(
      /Next:\n {2}kie-batch worker .*\n {2}kie-batch status summer-shoot --watch /,
    );
    // No progress line or control characters when stderr is not a TTY.
    expect(first.stdout).not.toContain("\x1b");

    const second = await kieBatch(["enqueue", file, "--json"]);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({
      batch: "summer-shoot",
      total: 3,
      enqueued: 0,
      duplicates: 3,
    });
  });

  it("reads stdin with - and --batch", async () => {
    const result = await kieBatch(["enqueue", "-", "--batch", "piped", "--set", "acceleration=high"], {
      stdin: "prompt\nfrom a pipe\nanother\n",
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Batch:              piped  (from stdin, csv)");
    expect(result.stdout).toContain("Estimated credits:  12 for the 2 rows enqueued");
  });

  it("stdin without --batch is a clear usage error, exit 2", async () => {
    const result = await kieBatch(["enqueue", "-"], { stdin: "prompt\na\n" });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("kie-batch: reading from stdin: pass --batch NAME\n");
    expect(result.stdout).toBe("");
  });

  it("exits 2 when no row is valid, listing the errors with FILE:LINE", async () => {
    const file = await files.write("all-bad.csv", 'prompt,seed\n"two\nlines",x\n,1\n');
    const result = await kieBatch(["enqueue", file, "--batch", "bad"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain(`${file}:2: seed: expected`);
    expect(result.stdout).toContain(`${file}:4: prompt: expected a prompt, found none`);
    expect(result.stdout).toContain("No valid row: nothing was enqueued.");
  });

  it("exits 2 for a file that cannot be parsed, naming the position", async () => {
    const file = await files.write("broken.csv", 'prompt\nok\n"unclosed\n');
    const result = await kieBatch(["enqueue", file, "--batch", "broken"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^kie-batch: .*broken\.csv:3: .*\nnothing was enqueued\n$/);
    expect(await keysWithPrefix(redis, prefix)).not.toContainEqual(expect.stringContaining("broken"));
  });

  it("--strict with an invalid row enqueues nothing, exit 2", async () => {
    const file = await files.write("strict.csv", "prompt,seed\na,1\nb,1.5\n");
    const result = await kieBatch(["enqueue", file, "--strict"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain("--strict: 1 invalid row, so nothing was enqueued.");
    expect(await keysWithPrefix(redis, prefix)).not.toContainEqual(expect.stringContaining("strict"));
  });

  it("exits 1 when Redis does not answer, naming REDIS_URL without its password", async () => {
    const file = await files.write("down.csv", "prompt\na\n");
    const result = await kieBatch(["enqueue", file], {
      env: { REDIS_URL: "redis://:hunter2-pw@127.0.0.1:1" },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Redis is not answering at redis://:***@127.0.0.1:1");
    expect(result.stderr).not.toContain("hunter2-pw");
  });

  it("--dry-run works with Redis down and exits 0", async () => {
    const file = await files.write("offline.csv", "prompt,acceleration\na,regular\n");
    const result = await kieBatch(["enqueue", file, "--dry-run"], {
      env: { REDIS_URL: "redis://127.0.0.1:1" },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Dry run: nothing was written to Redis.");
    expect(result.stdout).toContain("Estimated credits:  7 for 1 row");
  });

  it("a dry run of rows with long metadata values holds a few rows at a time, not a chunk's worth (64 MB heap)", async () => {
    // 400 rows of a 250 KB caption: ~100 MB of file. Held 256 rows a read batch and 500 rows a
    // check chunk (the metadata kept), the dry run needed several times the heap it is given here.
    const caption = "c".repeat(250_000);
    const lines = Array.from({ length: 400 }, (_, i) =>
      JSON.stringify({ id: `long-${i + 1}`, prompt: `a lighthouse at dusk ${i + 1}`, caption }),
    );
    const file = await files.write("long-metadata.jsonl", `${lines.join("\n")}\n`);
    const result = await kieBatch(["enqueue", file, "--batch", "long-meta", "--dry-run"], {
      env: { NODE_OPTIONS: "--max-old-space-size=64" },
    });
    expect(result.stderr).not.toContain("heap out of memory");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Estimated credits:  3,200 for 400 rows");

    // The same in a JSON file, the long value nested deep in a metadata column.
    const nested = Array.from({ length: 400 }, (_, i) => ({
      id: `nested-${i + 1}`,
      prompt: `a lighthouse at dusk ${i + 1}`,
      objects: { found: [{ labels: [{ text: caption }] }] },
    }));
    const json = await files.write("long-nested.json", JSON.stringify(nested));
    const fromJson = await kieBatch(["enqueue", json, "--batch", "long-nested", "--dry-run"], {
      env: { NODE_OPTIONS: "--max-old-space-size=64" },
    });
    expect(fromJson.stderr).not.toContain("heap out of memory");
    expect(fromJson.code).toBe(0);
    expect(fromJson.stdout).toContain("Estimated credits:  3,200 for 400 rows");
  }, 30_000);

  it("rejects a bad flag value with exit 2", async () => {
    const file = await files.write("flags.csv", "prompt\na\n");
    const result = await kieBatch(["enqueue", file, "--priority", "high"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--priority: expected a whole number");
  });
});
