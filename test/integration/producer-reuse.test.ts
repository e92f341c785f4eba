/**
 * `enqueue` and reuse: a dry run counts the rows a worker would copy from the result index and
 * estimates only the rest; `--no-reuse` (given now, or stored with the batch by an earlier enqueue)
 * and a deployment with reuse off count none; a real
 * enqueue with `--no-reuse` stores it in the batch's meta, atomically with its first rows.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedisBackend } from "../../src/bull/producer-backend.js";
import { QueueSet } from "../../src/bull/queues.js";
import { createResultIndex, type ResultIndex, requestHash } from "../../src/ledger/index.js";
import { resultIndexKeys } from "../../src/ledger/result-index.js";
import type { EnqueueDeps } from "../../src/producer/index.js";
import { csv, type ProducerFixture, producerFixture } from "./producer-helpers.js";

let fx: ProducerFixture;
let index: ResultIndex;
const recorded: string[] = [];

beforeEach(async () => {
  fx = await producerFixture();
  index = createResultIndex(fx.redis, { prefix: fx.prefix, flavor: "qwen" });
});
afterEach(async () => {
  // The index lives under its own hash tag, outside the prefix's cleanup.
  for (const hash of recorded.splice(0)) await fx.redis.del(...resultIndexKeys(fx.prefix, hash, "qwen"));
  await fx.close();
});

/** Records an archived image for the request a manifest row `prompt,seed` makes. */
async function archivedBefore(prompt: string, params: Record<string, unknown>) {
  const hash = requestHash(prompt, params)!;
  recorded.push(hash);
  await index.record(hash, {
    images: [{ key: "old/row.png", bytes: 100, sha256: "a".repeat(64), contentType: "image/png" }],
    taskId: "task-old",
    batch: "old",
    rowId: "row",
    archivedAt: Date.now(),
  });
}

/** `connect` as the CLI builds it, with the result index (KIE_REUSE on) or without (off). */
function backend(withIndex: boolean): Partial<EnqueueDeps> {
  return {
    connect: async () =>
      createRedisBackend({
        redis: fx.redis,
        ledger: fx.ledger,
        queuePrefix: fx.prefix,
        queues: () => new QueueSet({ connection: fx.redis, queuePrefix: fx.prefix }),
        ...(withIndex ? { results: index } : {}),
      }),
  };
}

const MANIFEST = csv(
  "prompt,seed,image_size",
  "a red fox,11,", // indexed
  "an owl,12,landscape_4_3", // indexed as {seed: 12}: the default size is the same request
  "a red fox,,", // no seed: never reused
  "a red fox,99,", // another seed
  "a bee,13,square", // not indexed
);

describe("enqueue and the result index", () => {
  it("--dry-run counts the rows that would be reused and estimates only the rest", async () => {
    await archivedBefore("a red fox", { seed: 11 });
    await archivedBefore("an owl", { seed: 12 });
    const file = await fx.files.write("m.csv", MANIFEST);
    const summary = await fx.run({ file, batch: "b", dryRun: true }, backend(true));
    expect(summary).toMatchObject({ valid: 5, alreadyInBatch: 0, reusable: 2, estimatedCredits: 3 * 8 });
    expect(summary.out).toMatch(/Would be reused:\s+2\s+\(same request and seed/);
    expect(summary.out).toMatch(/Estimated credits:\s+24 for 3 rows/);
  });

  it("--dry-run --json names the count", async () => {
    await archivedBefore("a red fox", { seed: 11 });
    const file = await fx.files.write("m.csv", MANIFEST);
    const summary = await fx.run({ file, batch: "b", dryRun: true, json: true }, backend(true));
    expect(JSON.parse(summary.out)).toMatchObject({ reusable: 1, estimatedCredits: 4 * 8 });
  });

  it("with --no-reuse, or with reuse off for the deployment, no row is counted as reused", async () => {
    await archivedBefore("a red fox", { seed: 11 });
    const file = await fx.files.write("m.csv", MANIFEST);
    const noReuse = await fx.run({ file, batch: "b", dryRun: true, noReuse: true }, backend(true));
    expect(noReuse.reusable).toBeUndefined();
    expect(noReuse.estimatedCredits).toBe(5 * 8);
    expect(noReuse.out).not.toContain("Would be reused");
    const off = await fx.run({ file, batch: "b", dryRun: true }, backend(false));
    expect(off.reusable).toBeUndefined();
    expect(off.estimatedCredits).toBe(5 * 8);
  });

  it("a batch enqueued with --no-reuse before: a dry run without the flag counts no row as reused", async () => {
    await archivedBefore("a red fox", { seed: 11 });
    const first = await fx.files.write("first.csv", csv("prompt,seed", "a cat,5"));
    await fx.run({ file: first, batch: "fresh", noReuse: true }, backend(true));
    const file = await fx.files.write("m.csv", MANIFEST);
    const summary = await fx.run({ file, batch: "fresh", dryRun: true }, backend(true));
    expect(summary.reusable).toBeUndefined();
    expect(summary).toMatchObject({ alreadyInBatch: 0, estimatedCredits: 5 * 8 });
    expect(summary.out).not.toContain("Would be reused");
    // Another batch is not touched by it.
    expect((await fx.run({ file, batch: "other", dryRun: true }, backend(true))).reusable).toBe(1);
  });

  it("rows the batch already holds are not counted again as reused", async () => {
    await archivedBefore("a red fox", { seed: 11 });
    const file = await fx.files.write("m.csv", MANIFEST);
    await fx.run({ file, batch: "b" }, backend(true));
    const summary = await fx.run({ file, batch: "b", dryRun: true }, backend(true));
    expect(summary).toMatchObject({ alreadyInBatch: 5, reusable: 0, estimatedCredits: 0 });
  });

  it("enqueue --no-reuse stores it in the batch's meta; a later enqueue without it leaves it set", async () => {
    const file = await fx.files.write("m.csv", MANIFEST);
    await fx.run({ file, batch: "fresh", noReuse: true }, backend(true));
    expect(await fx.ledger.getBatch("fresh")).toMatchObject({ total: 5, noReuse: true });
    expect(await index.reuseOff("fresh")).toBe(true);
    const more = await fx.files.write("more.csv", csv("prompt,seed", "a cat,5"));
    await fx.run({ file: more, batch: "fresh" }, backend(true));
    expect(await fx.ledger.getBatch("fresh")).toMatchObject({ total: 6, noReuse: true });

    await fx.run({ file, batch: "plain" }, backend(true));
    expect((await fx.ledger.getBatch("plain"))?.noReuse).toBeUndefined();
    expect(await index.reuseOff("plain")).toBe(false);
  });
});
