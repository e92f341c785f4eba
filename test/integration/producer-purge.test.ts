/**
 * `enqueue` and `purge` of one batch at once: a batch `purge` marked, or deleted between two of
 * an enqueue's chunks, takes no row (it would be counted twice, or land in a batch made again
 * without its budget), and the enqueue says so with the purge's own message.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { ledgerKeys } from "../../src/ledger/index.js";
import type { EnqueueDeps } from "../../src/producer/index.js";
import { csv, csvRows, type ProducerFixture, producerFixture } from "./producer-helpers.js";

let fx: ProducerFixture;
beforeEach(async () => {
  fx = await producerFixture();
});
afterEach(async () => {
  await fx.close();
});

/** The fixture's backend, with `before(n)` run ahead of its n-th `addRows` call (1 = the first). */
function backendWith(before: (n: number) => Promise<void>): Pick<EnqueueDeps, "connect"> {
  return {
    connect: async () => {
      const backend = await createRedisBackend({
        redis: fx.redis,
        ledger: fx.ledger,
        queuePrefix: fx.prefix,
        queues: () => new QueueSet({ connection: fx.redis, queuePrefix: fx.prefix }),
      });
      let calls = 0;
      const addRows = backend.ledger.addRows;
      backend.ledger.addRows = async (batch, rows, meta) => {
        await before(++calls);
        return addRows(batch, rows, meta);
      };
      return backend;
    },
  };
}

describe("enqueue meets a purge", () => {
  it("a batch deleted by a purge after the first chunk is not made again (no budget, no window) by the next", async () => {
    const file = await fx.files.write("big.csv", csv("prompt,seed", ...csvRows(1_500)));
    const run = fx.run(
      { file, batch: "gone", budget: 50 },
      backendWith(async (n) => {
        if (n === 2) await fx.ledger.purge("gone");
      }),
    );
    await expect(run).rejects.toMatchObject({
      code: "batch_gone",
      message: expect.stringContaining("batch gone was deleted (purged) while this enqueue added rows"),
    });
    // Before: the second chunk made the batch again with its 500 rows, no budget and no window.
    expect(await fx.ledger.getBatch("gone")).toBeUndefined();
  });

  it("a purge that marks the batch during the enqueue's first pass: refused with the purge's message, not 'run it again for the rest'", async () => {
    const file = await fx.files.write("some.csv", csv("prompt,seed", ...csvRows(20)));
    await fx.ledger.addRows("late", [
      { id: "x", line: 2, prompt: "p", params: {}, metadata: {}, estimatedCredits: 8 },
    ]);
    const run = fx.run(
      { file, batch: "late" },
      backendWith(async (n) => {
        if (n === 1) await fx.redis.hset(ledgerKeys(fx.prefix).batch("late"), "purging", Date.now());
      }),
    );
    await expect(run).rejects.toMatchObject({
      code: "batch_purging",
      message: expect.stringContaining("kie-batch purge late --yes"),
    });
    expect(await fx.ledger.getBatch("late")).toMatchObject({ total: 1 });
  });

  it("a dry run of a batch a purge marked says what the enqueue would: refused", async () => {
    const file = await fx.files.write("dry.csv", csv("prompt,seed", ...csvRows(5)));
    await fx.ledger.addRows("marked", [
      { id: "x", line: 2, prompt: "p", params: {}, metadata: {}, estimatedCredits: 8 },
    ]);
    await fx.redis.hset(ledgerKeys(fx.prefix).batch("marked"), "purging", Date.now());
    await expect(fx.run({ file, batch: "marked", dryRun: true })).rejects.toMatchObject({
      code: "batch_purging",
    });
  });
  it("rows appended to a batch purged before the first chunk are refused, not given a batch made anew without its budget", async () => {
    await fx.ledger.addRows(
      "kept",
      [{ id: "x", line: 2, prompt: "p", params: {}, metadata: {}, estimatedCredits: 8 }],
      {
        budget: 50,
      },
    );
    const file = await fx.files.write("more.csv", csv("prompt,seed", ...csvRows(20)));
    const run = fx.run(
      { file, batch: "kept" },
      backendWith(async (n) => {
        if (n === 1) await fx.ledger.purge("kept");
      }),
    );
    await expect(run).rejects.toMatchObject({ code: "batch_gone" });
    expect(await fx.ledger.getBatch("kept")).toBeUndefined();
  });

  it("a later chunk's new metadata column leaves no key of a batch purged meanwhile", async () => {
    // A column first met after the first chunk: its name is recorded with that chunk.
    const lines = Array.from({ length: 700 }, (_, i) =>
      JSON.stringify(i < 600 ? { prompt: `p ${i}`, seed: i } : { prompt: `p ${i}`, seed: i, late: "x" }),
    );
    const file = await fx.files.write("late.jsonl", `${lines.join("\n")}\n`);
    const run = fx.run(
      { file, batch: "cols" },
      backendWith(async (n) => {
        if (n === 2) await fx.ledger.purge("cols");
      }),
    );
    await expect(run).rejects.toMatchObject({ code: "batch_gone" });
    expect((await fx.keys()).filter((key) => key.includes(`${fx.prefix}:cols}`))).toEqual([]);
  });
});
