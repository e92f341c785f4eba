/**
 * The producer and the submit window (issue 10): a batch enqueued with KIE_SUBMIT_WINDOW gets
 * submit jobs for its first window only, at its priority; the rest of its rows are held in the
 * ledger. Rows appended later are held too; a batch created without a window (an earlier
 * version) keeps getting a job per row. A dry run writes nothing, as before.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { csv, csvRows, type ProducerFixture, producerFixture } from "./producer-helpers.js";

let fx: ProducerFixture;
beforeEach(async () => {
  fx = await producerFixture();
});
afterEach(async () => {
  await fx.close();
});

/** `enqueue` through a backend with a submit window of `submitWindow` rows. */
const windowed = (submitWindow: number) => ({
  connect: async () =>
    createRedisBackend({
      redis: fx.redis,
      ledger: fx.ledger,
      queuePrefix: fx.prefix,
      submitWindow,
      queues: () => new QueueSet({ connection: fx.redis, queuePrefix: fx.prefix }),
    }),
});

const idRows = (n: number) => Array.from({ length: n }, (_, i) => `row${i},prompt ${i}`);

async function submitJobs(): Promise<{ id: string; priority: number }[]> {
  const jobs = await fx.queues().queues.submit.getJobs(["wait", "prioritized", "delayed", "active"]);
  return jobs.map((job) => ({ id: job.id ?? "", priority: job.opts.priority ?? 0 }));
}

describe("enqueue with a submit window", () => {
  it("adds submit jobs for the first window only, in manifest order, at the batch's priority", async () => {
    const file = await fx.files.write("big.csv", csv("id,prompt", ...idRows(120)));
    const summary = await fx.run({ file, batch: "big", priority: 42 }, windowed(50));
    expect(summary).toMatchObject({ enqueued: 120, exitCode: 0 });
    const jobs = await submitJobs();
    expect(jobs).toHaveLength(50);
    expect(new Set(jobs.map(({ priority }) => priority))).toEqual(new Set([42]));
    expect(jobs.map(({ id }) => id).sort()).toEqual(
      Array.from({ length: 50 }, (_, i) => `big/row${i}`).sort(),
    );
    expect(await fx.ledger.getBatch("big")).toMatchObject({ queued: 120, held: 70, fedSeq: 50 });

    // Re-enqueued with more rows: the new rows are held, the window is full, no job is added.
    const more = await fx.files.write("more.csv", csv("id,prompt", ...idRows(130)));
    const again = await fx.run({ file: more, batch: "big", priority: 42 }, windowed(50));
    expect(again).toMatchObject({ enqueued: 10, duplicates: 120 });
    expect(await submitJobs()).toHaveLength(50);
    expect(await fx.ledger.getBatch("big")).toMatchObject({ queued: 130, held: 80, fedSeq: 50 });
  });

  it("a re-enqueue without --priority keeps the batch's priority for its held rows; one with it replaces it", async () => {
    const file = await fx.files.write("p.csv", csv("id,prompt", ...idRows(20)));
    await fx.run({ file, batch: "pri", priority: 1 }, windowed(5));
    expect(await fx.ledger.getBatch("pri")).toMatchObject({ priority: 1, held: 15 });
    // A healing enqueue (no --priority: the default 1000 is not asked for).
    await fx.run({ file, batch: "pri" }, windowed(5));
    expect(await fx.ledger.getBatch("pri")).toMatchObject({ priority: 1, held: 15 });
    for (let i = 0; i < 5; i++)
      await fx.ledger.transition("pri", `row${i}`, { from: ["queued"], to: "submitted" });
    const fed = await fx.ledger.feedWindow("pri");
    expect(fed).toMatchObject({ priority: 1 });
    expect(fed.fed).toHaveLength(5);
    // --priority given: it replaces the kept one.
    await fx.run({ file, batch: "pri", priority: 5 }, windowed(5));
    expect(await fx.ledger.getBatch("pri")).toMatchObject({ priority: 5 });
  });

  it("a batch created without a window keeps a job per row, also for rows appended with one", async () => {
    const first = await fx.files.write("a.csv", csv("prompt,seed", ...csvRows(8)));
    await fx.run({ file: first, batch: "old" });
    const both = await fx.files.write("b.csv", csv("prompt,seed", ...csvRows(20)));
    const again = await fx.run({ file: both, batch: "old" }, windowed(5));
    expect(again).toMatchObject({ enqueued: 12, duplicates: 8 });
    expect(await submitJobs()).toHaveLength(20);
    const summary = await fx.ledger.getBatch("old");
    expect(summary?.held).toBeUndefined();
  });

  it("a dry run writes nothing", async () => {
    const file = await fx.files.write("dry.csv", csv("prompt,seed", ...csvRows(30)));
    await fx.run({ file, batch: "dry", dryRun: true }, windowed(5));
    expect(await fx.keys()).toEqual([]);
  });

  describe("the producer feeds a full window once, not after every chunk", () => {
    /** `windowed`, with the backend's feeds counted (each is an HMGET and a check in Redis). */
    const counted = (submitWindow: number) => {
      const feeds: number[] = [];
      const deps = {
        connect: async () => {
          const backend = await windowed(submitWindow).connect();
          return {
            ...backend,
            ledger: backend.ledger,
            addSubmitJobs: backend.addSubmitJobs.bind(backend),
            rowsExist: backend.rowsExist.bind(backend),
            close: backend.close.bind(backend),
            async feedSubmitWindow(batch: string) {
              const fed = await backend.feedSubmitWindow(batch);
              feeds.push(fed);
              return fed;
            },
          };
        },
      };
      return { deps, feeds };
    };

    it("20 chunks into a window of 50: the first window, then one feed at the end", async () => {
      const file = await fx.files.write("many.csv", csv("id,prompt", ...idRows(10_000)));
      const { deps, feeds } = counted(50);
      const summary = await fx.run({ file, batch: "many" }, deps);
      expect(summary).toMatchObject({ enqueued: 10_000, exitCode: 0 });
      expect(feeds).toEqual([50, 0]);
      expect(await submitJobs()).toHaveLength(50);
      expect(await fx.ledger.getBatch("many")).toMatchObject({ held: 9_950, fedSeq: 50 });
    });

    it("a window wider than a chunk is fed chunk by chunk until it is full, then once at the end", async () => {
      const file = await fx.files.write("wide.csv", csv("id,prompt", ...idRows(5_000)));
      const { deps, feeds } = counted(1_200);
      await fx.run({ file, batch: "wide" }, deps);
      // Two chunks are in flight: the first feed may find one chunk recorded or two.
      expect(feeds.reduce((a, b) => a + b, 0)).toBe(1_200);
      expect(feeds.length).toBeLessThanOrEqual(5);
      expect(feeds.at(-1)).toBe(0);
      expect(await submitJobs()).toHaveLength(1_200);
      expect(await fx.ledger.getBatch("wide")).toMatchObject({ held: 3_800, fedSeq: 1_200 });
    });
  });
});
