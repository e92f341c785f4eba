import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openRedis, RedisUnavailableError } from "../../src/app/index.js";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { loadConfig } from "../../src/config/index.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import { ManifestParseError } from "../../src/manifest/index.js";
import { StrictCheckError } from "../../src/producer/index.js";
import { csv, csvRows, type ProducerFixture, producerFixture } from "./producer-helpers.js";

let fx: ProducerFixture;
beforeEach(async () => {
  fx = await producerFixture();
});
afterEach(async () => {
  await fx.close();
});

/** `connect` as the CLI builds it, against a Redis that is not there. */
const redisDown = {
  connect: async ({ timeoutMs }: { timeoutMs?: number }) => {
    await openRedis(
      loadConfig({ REDIS_URL: "redis://:s3cret-pw@127.0.0.1:1" }),
      timeoutMs ? { timeoutMs } : {},
    );
    throw new Error("unreachable: openRedis must have thrown");
  },
};

async function thrownBy(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error, none was thrown");
}

describe("--dry-run", () => {
  it("validates and estimates without writing a single key", async () => {
    const file = await fx.files.write(
      "dry.csv",
      csv("prompt,acceleration,steps", "a,high,10", "b,regular,10", "c,,10", "d,warp,10"),
    );
    const summary = await fx.run({ file, batch: "dry", dryRun: true, budget: 100 });
    expect(summary).toMatchObject({
      dryRun: true,
      total: 4,
      valid: 3,
      invalidRows: 1,
      enqueued: 0,
      alreadyInBatch: 0,
      estimatedCredits: 6 + 7 + 8,
      exitCode: 0,
    });
    expect(summary.out).toContain("Dry run: nothing was written to Redis.");
    expect(summary.out).toMatch(/Estimated credits:\s+21 for 3 rows/);
    expect(await fx.keys()).toEqual([]);
  });

  it("counts the rows the batch already holds, and leaves the ledger as it was", async () => {
    const part = await fx.files.write("part.csv", csv("prompt,seed", ...csvRows(1_200)));
    const all = await fx.files.write("all.csv", csv("prompt,seed", ...csvRows(1_500)));
    await fx.run({ file: part, batch: "b" });
    const keysBefore = await fx.keys();
    const batchBefore = await fx.ledger.getBatch("b");

    const summary = await fx.run({ file: all, batch: "b", dryRun: true });
    expect(summary).toMatchObject({ valid: 1_500, alreadyInBatch: 1_200, estimatedCredits: 300 * 8 });
    expect(summary.out).toMatch(/Already in batch:\s+1,200/);
    expect(await fx.keys()).toEqual(keysBefore);
    expect(await fx.ledger.getBatch("b")).toEqual(batchBefore);
  });

  it("counts frozen rows (no keys of their own, only their place in the batch's order) as held", async () => {
    const part = await fx.files.write("part.csv", csv("prompt,seed", ...csvRows(200)));
    const all = await fx.files.write("all.csv", csv("prompt,seed", ...csvRows(300)));
    await fx.run({ file: part, batch: "b" });
    // What freezing leaves of a row (ledger/freeze.ts): its order entry, under the cursor.
    const keys = ledgerKeys(fx.prefix);
    const ids = await fx.redis.zrange(keys.order("b"), 0, -1);
    await fx.redis.del(...ids.flatMap((id) => [keys.row("b", id), keys.body("b", id)]));
    await fx.redis.hset(keys.batch("b"), "frozenTo", "256");

    const summary = await fx.run({ file: all, batch: "b", dryRun: true });
    expect(summary).toMatchObject({ valid: 300, alreadyInBatch: 200, estimatedCredits: 100 * 8 });
  });

  it("finds a given id repeated in the file as the enqueue does: the same request once, another an error", async () => {
    // Line 4 gives "a" to another prompt; line 5 repeats "b" as it was; line 6 is line 3 again
    // without an id (named by its request, so the same row); line 7 is a row of its own.
    const file = await fx.files.write(
      "repeats.csv",
      csv("id,prompt", "a,cat", "b,dog", "a,horse", "b,dog", ",owl", ",owl", "c,emu"),
    );
    const dry = await fx.run({ file, batch: "rep", dryRun: true });
    expect(dry).toMatchObject({
      total: 7,
      valid: 6,
      invalidRows: 1,
      idConflicts: 1,
      repeatedInFile: 2,
      duplicatesWithoutId: 1,
      alreadyInBatch: 0,
      estimatedCredits: 4 * 8,
    });
    expect(dry.errors).toEqual([
      expect.objectContaining({
        line: 4,
        field: "id",
        message: expect.stringContaining('"a" is already the id of line 2 of this file'),
      }),
    ]);
    expect(dry.out).toMatch(/Repeated in file:\s+2/);
    expect(dry.out).toMatch(/Estimated credits:\s+32 for 4 rows/);
    expect(await fx.keys()).toEqual([]);

    // What the enqueue then does: the same rows added, the same row refused, the same credits.
    const real = await fx.run({ file, batch: "rep" });
    expect(real).toMatchObject({ enqueued: 4, duplicates: 2, idConflicts: 1, estimatedCredits: 4 * 8 });
    expect(real.errors.map((error) => error.line)).toEqual([4]);
  });

  it("finds a given id the batch holds for another request, and --strict refuses the file for it", async () => {
    const first = await fx.files.write("first.csv", csv("id,prompt", "a,cat", "b,dog"));
    await fx.run({ file: first, batch: "held" });
    const again = await fx.files.write("again.csv", csv("id,prompt", "b,dog", "a,zebra", "c,emu"));
    const keysBefore = await fx.keys();

    const dry = await fx.run({ file: again, batch: "held", dryRun: true });
    expect(dry).toMatchObject({ valid: 2, invalidRows: 1, idConflicts: 1, alreadyInBatch: 1 });
    expect(dry.errors).toEqual([
      expect.objectContaining({
        line: 3,
        field: "id",
        message: expect.stringContaining(
          '"a" is already a row of batch held (line 2 of the enqueue that added it)',
        ),
      }),
    ]);
    expect(dry.out).toMatch(/Estimated credits:\s+8 for 1 row/);
    const strict = await fx.run({ file: again, batch: "held", dryRun: true, strict: true });
    expect(strict).toMatchObject({ strictRejected: true, exitCode: 2 });
    expect(await fx.keys()).toEqual(keysBefore);
  });

  it("a row under an id the batch holds is compared with the batch's row, whatever the file's earlier rows (as the enqueue)", async () => {
    const first = await fx.files.write("held.csv", csv("id,prompt", "x,cat"));
    await fx.run({ file: first, batch: "ref" });
    // Line 2 asks another prompt than the batch's x (an error); line 3 asks the batch's (held);
    // lines 4 and 5 ask another again, twice (both errors: each is compared with the batch's row).
    const file = await fx.files.write("ref.csv", csv("id,prompt", "x,dog", "x,cat", "x,emu", "x,emu"));
    const dry = await fx.run({ file, batch: "ref", dryRun: true });
    const real = await fx.run({ file, batch: "ref" });
    expect(real).toMatchObject({ enqueued: 0, duplicates: 1, idConflicts: 3, invalidRows: 3 });
    expect(dry).toMatchObject({ alreadyInBatch: 1, repeatedInFile: 0, idConflicts: 3, invalidRows: 3 });
    expect(dry.errors.map((error) => error.line)).toEqual(real.errors.map((error) => error.line));
  });

  it("--strict refuses a file whose only fault is an id conflict, before writing a row, as its dry run says", async () => {
    const first = await fx.files.write("s-held.csv", csv("id,prompt", "x,cat"));
    await fx.run({ file: first, batch: "st" });
    const inFile = await fx.files.write("s-file.csv", csv("id,prompt", "a,cat", "b,dog", "a,horse"));
    const inBatch = await fx.files.write("s-batch.csv", csv("id,prompt", "c,cat", "x,zebra"));
    for (const file of [inFile, inBatch]) {
      const keysBefore = await fx.keys();
      const dry = await fx.run({ file, batch: "st", dryRun: true, strict: true });
      const real = await fx.run({ file, batch: "st", strict: true });
      expect(dry).toMatchObject({ strictRejected: true, idConflicts: 1, exitCode: 2 });
      expect(real).toMatchObject({ strictRejected: true, idConflicts: 1, enqueued: 0, exitCode: 2 });
      expect(real.errors).toEqual([
        expect.objectContaining({
          field: "id",
          message: expect.stringContaining("--strict adds no row of this file"),
        }),
      ]);
      expect(await fx.keys()).toEqual(keysBefore);
    }
    // Without a conflict, --strict writes the file as before.
    const clean = await fx.files.write("s-clean.csv", csv("id,prompt", "d,cat", "x,cat"));
    expect(await fx.run({ file: clean, batch: "st", strict: true })).toMatchObject({
      enqueued: 1,
      duplicates: 1,
    });
  });

  it("--strict refuses a file whose held rows cannot be read back (it cannot promise no conflict), writing nothing", async () => {
    const first = await fx.files.write("u-held.csv", csv("id,prompt", "x,cat"));
    await fx.run({ file: first, batch: "un" });
    const file = await fx.files.write("u-file.csv", csv("id,prompt", "c,cat", "x,zebra"));
    const keysBefore = await fx.keys();
    const unreadable = {
      connect: async () => {
        const backend = createRedisBackend({
          redis: fx.redis,
          ledger: fx.ledger,
          queuePrefix: fx.prefix,
          queues: () => new QueueSet({ connection: fx.redis, queuePrefix: fx.prefix }),
        });
        const getRows = async () => {
          throw new Error("a frozen page that does not decode");
        };
        return { ...backend, close: () => backend.close(), ledger: { ...backend.ledger, getRows } };
      },
    };
    const error = await thrownBy(() => fx.run({ file, batch: "un", strict: true }, unreadable));
    expect(error).toBeInstanceOf(StrictCheckError);
    expect((error as Error).message).toContain("a frozen page that does not decode");
    expect(await fx.keys()).toEqual(keysBefore);
    // Its dry run says the same; without --strict the failure is a warning, and the check goes on.
    const dryStrict = await thrownBy(() =>
      fx.run({ file, batch: "un", dryRun: true, strict: true }, unreadable),
    );
    expect(dryStrict).toBeInstanceOf(StrictCheckError);
    const relaxed = await fx.run({ file, batch: "un", dryRun: true }, unreadable);
    expect(relaxed.warnings.join("\n")).toContain("could not all be read back");
  });

  it("finds repeats in the file with Redis down too", async () => {
    const file = await fx.files.write("offline-rep.csv", csv("id,prompt", "a,cat", "a,cat", "a,dog"));
    const summary = await fx.run({ file, batch: "offline", dryRun: true }, redisDown);
    expect(summary).toMatchObject({ valid: 2, repeatedInFile: 1, idConflicts: 1, estimatedCredits: 8 });
    expect(summary.alreadyInBatch).toBeUndefined();
  });

  it("works with Redis down, and says the batch was not checked", async () => {
    const file = await fx.files.write("offline.csv", csv("prompt", "a", "b"));
    const summary = await fx.run({ file, batch: "offline", dryRun: true }, redisDown);
    expect(summary).toMatchObject({ valid: 2, estimatedCredits: 16, exitCode: 0 });
    expect(summary.alreadyInBatch).toBeUndefined();
    expect(summary.redisNote).toContain("redis://:***@127.0.0.1:1");
    expect(summary.out).toMatch(
      /Already in batch:\s+not checked \(Redis is not answering at redis:\/\/:\*\*\*@127\.0\.0\.1:1/,
    );
    expect(summary.out).not.toContain("s3cret-pw");
  });
});

describe("Redis unreachable", () => {
  it("a real enqueue fails with the message naming REDIS_URL without its password", async () => {
    const file = await fx.files.write("x.csv", csv("prompt", "a"));
    const error = await thrownBy(() => fx.run({ file, batch: "x" }, redisDown));
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toContain("redis://:***@127.0.0.1:1");
    expect((error as Error).message).not.toContain("s3cret-pw");
  });
});

describe("--strict", () => {
  it("one invalid row among many means nothing is written, exit 2", async () => {
    const rows = csvRows(2_500);
    rows[2_222] = "prompt bad,7.5";
    const file = await fx.files.write("strict.csv", csv("prompt,seed", ...rows));
    const summary = await fx.run({ file, batch: "strict", strict: true, budget: 10 });
    expect(summary).toMatchObject({
      strictRejected: true,
      enqueued: 0,
      invalidRows: 1,
      valid: 2_499,
      exitCode: 2,
    });
    expect(summary.errors).toEqual([
      expect.objectContaining({ line: 2_224, field: "seed", message: expect.stringContaining("7.5") }),
    ]);
    expect(summary.out).toContain("--strict: 1 invalid row, so nothing was enqueued.");
    expect(await fx.keys()).toEqual([]);
  });

  it("a file whose rows are all valid is enqueued whole", async () => {
    const file = await fx.files.write("ok.csv", csv("prompt,seed", ...csvRows(1_100)));
    const summary = await fx.run({ file, batch: "ok", strict: true });
    expect(summary).toMatchObject({ strictRejected: false, enqueued: 1_100, exitCode: 0 });
  });
});

describe("a file that cannot be parsed enqueues nothing", () => {
  it("an unterminated quote after 2,500 good rows: nothing written, the line named", async () => {
    const file = await fx.files.write(
      "broken.csv",
      `${csv("prompt,seed", ...csvRows(2_500))}"never closed,1\n`,
    );
    const error = await thrownBy(() => fx.run({ file, batch: "broken" }));
    expect(error).toBeInstanceOf(ManifestParseError);
    expect((error as ManifestParseError).line).toBe(2_502);
    expect((error as Error).message).toMatch(/broken\.csv:2502: .*never closed/);
    expect(await fx.keys()).toEqual([]);
  });

  it("truncated JSON: nothing written", async () => {
    const rows = Array.from({ length: 1_500 }, (_, i) => JSON.stringify({ prompt: `p${i}` }));
    const file = await fx.files.write("cut.json", `[\n${rows.join(",\n")},\n{"prompt": "cut`);
    const error = await thrownBy(() => fx.run({ file, batch: "cut" }));
    expect(error).toBeInstanceOf(ManifestParseError);
    expect(await fx.keys()).toEqual([]);
  });

  it("bytes that are not UTF-8 past the first 64 KiB read: nothing written", async () => {
    const head = Buffer.from(
      csv("prompt", ...Array.from({ length: 20_000 }, (_, i) => `prompt number ${i}`)),
    );
    const file = await fx.files.write(
      "latin1.csv",
      Buffer.concat([head, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]),
    );
    const error = await thrownBy(() => fx.run({ file, batch: "latin1" }));
    expect(error).toBeInstanceOf(ManifestParseError);
    expect((error as ManifestParseError).line).toBe(20_002);
    expect(await fx.keys()).toEqual([]);
  });

  it("a header without a prompt column", async () => {
    const file = await fx.files.write("noprompt.csv", csv("Prompt,seed", "a,1"));
    const error = await thrownBy(() => fx.run({ file, batch: "np" }));
    expect((error as Error).message).toContain('no "prompt" column');
    expect(await fx.keys()).toEqual([]);
  });
});

describe("exit codes", () => {
  it("2 when no row is valid, with nothing enqueued", async () => {
    const file = await fx.files.write("bad.csv", csv("prompt,seed", ",1", "x,abc"));
    const summary = await fx.run({ file, batch: "bad" });
    expect(summary).toMatchObject({ valid: 0, invalidRows: 2, enqueued: 0, exitCode: 2 });
    expect(summary.out).toContain("No valid row: nothing was enqueued.");
  });

  it.each([
    ["header.csv", "prompt,seed\n", "(only its header)"],
    ["empty.jsonl", "\n\n", "(no line with a row)"],
    ["empty.json", "[]", "(an empty list)"],
  ])("2 for %s, a file with no row, saying so (not 'no valid row')", async (name, text, hint) => {
    const file = await fx.files.write(name, text);
    const summary = await fx.run({ file, batch: "none" });
    expect(summary).toMatchObject({ total: 0, valid: 0, enqueued: 0, exitCode: 2 });
    expect(summary.out).toContain(`No row in ${file} ${hint}: nothing was enqueued.`);
    expect(summary.out).not.toContain("No valid row");
    expect(await fx.keys()).toEqual([]);
  });

  it("0 when some rows are valid: those are enqueued and the others reported", async () => {
    const file = await fx.files.write("mixed.csv", csv("prompt,seed", "a,1", "x,abc", "b,2"));
    const summary = await fx.run({ file, batch: "mixed" });
    expect(summary).toMatchObject({ valid: 2, invalidRows: 1, enqueued: 2, exitCode: 0 });
  });
});
