import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { createLedger } from "../../src/ledger/index.js";
import { ENQUEUE_CHUNK, EnqueueInterruptedError } from "../../src/producer/index.js";
import { jobKey } from "../../src/worker/jobs.js";
import { csv, csvRows, type ProducerFixture, producerFixture } from "./producer-helpers.js";

const EXAMPLES_DIR = new URL("../../examples/", import.meta.url).pathname;

let fx: ProducerFixture;
beforeEach(async () => {
  fx = await producerFixture();
});
afterEach(async () => {
  await fx.close();
});

describe("enqueue is idempotent", () => {
  it("a second run of the same file into the same batch enqueues nothing and reports duplicates", async () => {
    const file = await fx.files.write("cats.csv", csv("id,prompt", "a,a cat", "b,a dog", "c,a fox"));
    const first = await fx.run({ file, batch: "pets" });
    expect(first).toMatchObject({ total: 3, enqueued: 3, duplicates: 0, exitCode: 0 });
    const keysAfterFirst = await fx.keys();

    const second = await fx.run({ file, batch: "pets" });
    expect(second).toMatchObject({ total: 3, enqueued: 0, duplicates: 3, exitCode: 0 });
    expect(second.out).toMatch(/Enqueued:\s+0\n/);
    expect(second.out).toMatch(/Duplicates:\s+3 /);
    expect(await fx.ledger.getBatch("pets")).toMatchObject({ total: 3, queued: 3 });
    expect(await fx.queues().queues.submit.getJobCountByTypes("prioritized", "waiting")).toBe(3);
    // No new key: no second job, no second ledger row.
    expect(await fx.keys()).toEqual(keysAfterFirst);
  });

  it("the default batch name comes from the file name, so re-running the file lands in the same batch", async () => {
    const file = await fx.files.write("Spring catalogue (v2).csv", csv("prompt", "a vase", "a lamp"));
    const first = await fx.run({ file });
    expect(first.batch).toBe("Spring-catalogue-v2");
    expect(first.out).toContain("Batch:              Spring-catalogue-v2");
    expect(first.enqueued).toBe(2);

    const second = await fx.run({ file });
    expect(second).toMatchObject({ batch: "Spring-catalogue-v2", enqueued: 0, duplicates: 2 });
    expect((await fx.ledger.listBatches()).map((b) => b.batch)).toEqual(["Spring-catalogue-v2"]);
  });

  it("appending rows to a batch enqueues only the new ones", async () => {
    const first = await fx.files.write("part1.csv", csv("prompt,seed", ...csvRows(3)));
    const both = await fx.files.write("part2.csv", csv("prompt,seed", ...csvRows(5)));
    await fx.run({ file: first, batch: "grow" });
    const second = await fx.run({ file: both, batch: "grow" });
    expect(second).toMatchObject({ total: 5, enqueued: 2, duplicates: 3, estimatedCredits: 16 });
    expect(await fx.ledger.getBatch("grow")).toMatchObject({ total: 5, creditsEstimated: 40 });
    const seqs: number[] = [];
    for await (const row of fx.ledger.rows("grow")) seqs.push(row.seq);
    expect(seqs).toEqual([0, 1, 2, 3, 4]);
  });

  it("rows with the same id in one file are enqueued once; another request under a taken id is an error on its line", async () => {
    const file = await fx.files.write(
      "ids.csv",
      csv("id,prompt,seed", "x,first,1", "y,other,1", "x,first,1", "x,second,1", "y,other,2"),
    );
    const summary = await fx.run({ file, batch: "ids" });
    // Line 4 repeats line 2 exactly: one row. Lines 5 and 6 reuse an id for another prompt or
    // seed: not added, and said (they were silently dropped as duplicates before).
    expect(summary).toMatchObject({
      total: 5,
      valid: 3,
      enqueued: 2,
      duplicates: 1,
      idConflicts: 2,
      invalidRows: 2,
    });
    expect(summary.errors).toEqual([
      expect.objectContaining({
        line: 5,
        field: "id",
        message: expect.stringContaining(
          '"x" is already a row of batch ids (line 2 of the enqueue that added it)',
        ),
      }),
      expect.objectContaining({
        line: 6,
        field: "id",
        message: expect.stringContaining(
          '"y" is already a row of batch ids (line 3 of the enqueue that added it)',
        ),
      }),
    ]);
    expect(summary.out).toMatch(/ids\.csv:5: id: "x" is already a row/);
    expect((await fx.ledger.getRow("ids", "x"))?.prompt).toBe("first");
    expect(summary.out).not.toContain("`seed` or `id`");

    // The same file again: its rows are the batch's own (no conflict); the two stay errors.
    const again = await fx.run({ file, batch: "ids" });
    expect(again).toMatchObject({ enqueued: 0, duplicates: 3, idConflicts: 2 });
  });

  it("an image row enqueued again from a moved folder is the same row (its file by sha256, not its path)", async () => {
    const { mkdir, copyFile } = await import("node:fs/promises");
    const { dirname, join } = await import("node:path");
    const manifest = await fx.files.write(
      "edit-src.csv",
      csv("id,model,prompt,image_path", "mug,edit,the mug on white,mug.png"),
    );
    const place = async (folder: string) => {
      const dir = join(dirname(manifest), folder);
      await mkdir(dir, { recursive: true });
      await copyFile(manifest, join(dir, "edit.csv"));
      await copyFile(join(EXAMPLES_DIR, "images", "mug.png"), join(dir, "mug.png"));
      return join(dir, "edit.csv");
    };
    const first = await place("a");
    const moved = await place("b");
    expect(await fx.run({ file: first, batch: "moved", apiFlavor: "jobs" })).toMatchObject({ enqueued: 1 });
    const again = await fx.run({ file: moved, batch: "moved", apiFlavor: "jobs" });
    expect(again).toMatchObject({ enqueued: 0, duplicates: 1, idConflicts: 0, exitCode: 0 });
  });

  it("identical rows without ids are one row, and the summary says how to make variations", async () => {
    const file = await fx.files.write(
      "same.csv",
      csv("prompt,image_size", "a red kite,square", " a red kite ,square", "a red kite,square_hd"),
    );
    const summary = await fx.run({ file, batch: "kites" });
    expect(summary).toMatchObject({ total: 3, enqueued: 2, duplicates: 1, duplicatesWithoutId: 1 });
    expect(summary.out).toContain("1 of them has no id");
    expect(summary.out).toContain("Add a `seed` or `id` column to make variations.");
  });

  it("a duplicate spanning chunks is caught, and every other row of a multi-chunk file is queued once", async () => {
    const rows = csvRows(2_500);
    rows.push(rows[10]!);
    const file = await fx.files.write("big.csv", csv("prompt,seed", ...rows));
    const summary = await fx.run({ file, batch: "big" });
    expect(summary).toMatchObject({ total: 2_501, enqueued: 2_500, duplicates: 1, exitCode: 0 });
    expect(await fx.ledger.getBatch("big")).toMatchObject({ total: 2_500, queued: 2_500 });
    expect(await fx.queues().queues.submit.getJobCountByTypes("prioritized", "waiting")).toBe(2_500);
  });
});

describe("a crash between the ledger write and addBulk heals on the next run", () => {
  it("a row the ledger holds as queued, whose job is missing, gets its job added again", async () => {
    const file = await fx.files.write("heal.csv", csv("id,prompt", "a,a cat", "b,a dog"));
    // As if the producer died after the ledger write: rows recorded, no jobs.
    await fx.ledger.addRows("heal", [
      { id: "a", line: 2, prompt: "a cat", params: {}, metadata: {}, estimatedCredits: 8 },
      { id: "b", line: 3, prompt: "a dog", params: {}, metadata: {}, estimatedCredits: 8 },
    ]);
    expect(await fx.jobIds("heal", ["a", "b"])).toEqual([]);

    const summary = await fx.run({ file, batch: "heal" });
    expect(summary).toMatchObject({ enqueued: 0, duplicates: 2 });
    expect(await fx.jobIds("heal", ["a", "b"])).toEqual([jobKey("heal", "a"), jobKey("heal", "b")]);
    expect(await fx.ledger.getBatch("heal")).toMatchObject({ total: 2, queued: 2 });
  });

  it("a row that has moved on past queued gets no new job", async () => {
    const file = await fx.files.write("moved.csv", csv("id,prompt", "a,a cat", "b,a dog"));
    await fx.run({ file, batch: "moved" });
    await fx.queues().queues.submit.remove(jobKey("moved", "a"));
    await fx.ledger.transition("moved", "a", { from: ["queued"], to: "submitted" });

    const summary = await fx.run({ file, batch: "moved" });
    expect(summary).toMatchObject({ enqueued: 0, duplicates: 2 });
    expect(await fx.jobIds("moved", ["a", "b"])).toEqual([jobKey("moved", "b")]);
  });
});

describe("a run that stops part-way", () => {
  it("says how far it got, and running it again finishes the batch with every row queued once", async () => {
    const file = await fx.files.write("stops.csv", csv("prompt,seed", ...csvRows(3_000)));
    let bulkCalls = 0;
    const failing = {
      connect: async () => {
        const backend = createRedisBackend({
          redis: fx.redis,
          ledger: createLedger(fx.redis, { prefix: fx.prefix }),
          queuePrefix: fx.prefix,
          queues: () => new QueueSet({ connection: fx.redis, queuePrefix: fx.prefix }),
        });
        return {
          ...backend,
          async addSubmitJobs(batch: string, rowIds: readonly string[], priority: number) {
            // The second chunk dies between its ledger write and its addBulk.
            if (++bulkCalls === 2) throw new Error("Connection is closed.");
            await backend.addSubmitJobs(batch, rowIds, priority);
          },
        };
      },
    };
    let error: unknown;
    try {
      await fx.run({ file, batch: "stops" }, failing);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EnqueueInterruptedError);
    expect((error as Error).message).toContain("running the same command again enqueues the rest");
    const recorded = (await fx.ledger.getBatch("stops"))!.total;
    expect(recorded).toBeGreaterThanOrEqual(2 * ENQUEUE_CHUNK);

    const again = await fx.run({ file, batch: "stops" });
    expect(again).toMatchObject({ enqueued: 3_000 - recorded, duplicates: recorded, exitCode: 0 });
    expect(await fx.ledger.getBatch("stops")).toMatchObject({ total: 3_000, queued: 3_000 });
    expect(await fx.queues().queues.submit.getJobCountByTypes("prioritized", "waiting")).toBe(3_000);
  });
});
