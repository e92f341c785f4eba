/**
 * The worker never holds an image whole: a 60 MB result goes from the simulator to the archive
 * folder through the whole pipeline while the process's RSS barely moves.
 *
 * Why 60 MB and the folder store: at 25 MB, RSS noise in this process (V8 growing its heap
 * while the simulator serves the file in the same process) reached 16 MB, too close to the
 * image to tell streaming from buffering. The S3 path's own buffers are bounded by design at
 * about (queueSize + 1) x partSize = 40 MiB, and in-process s3rver adds 10-40 MB of noise, so
 * archive-memory.test.ts bounds the S3 store alone, with 120 MB.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";

const MiB = 1024 * 1024;
const IMAGE_BYTES = 60 * 1_000_000;
/** Measured: 0-4 MB. Holding the image whole would add at least its 60 MB. */
const MAX_RSS_GROWTH = 30 * MiB;

describe("worker: memory", () => {
  const harnesses = harnessPerTest();

  it("archives a 60 MB image while RSS grows by less than 30 MB", async () => {
    const h = await harnesses.start({ sim: { imagePadBytes: IMAGE_BYTES } });
    await h.worker();
    // The first image loads every code path and its one-off allocations.
    await h.pipeline.addRows("bwarm", [{ id: "w" }]);
    await h.pipeline.waitFinished("bwarm", 15_000);
    (globalThis as { gc?: () => void }).gc?.();

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    try {
      await h.pipeline.addRows("bbig", [{ id: "big" }]);
      const summary = await h.pipeline.waitFinished("bbig", 15_000);
      expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = peak - before;

    const row = await h.pipeline.ledger.getRow("bbig", "big");
    expect(row?.bytes).toBeGreaterThanOrEqual(IMAGE_BYTES);
    expect(growth, `RSS ${(before / MiB).toFixed(0)} MB -> peak ${(peak / MiB).toFixed(0)} MB`).toBeLessThan(
      MAX_RSS_GROWTH,
    );
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(join(h.pipeline.archiveDir, "bbig", "big.png")))
      hash.update(chunk);
    expect(hash.digest("hex")).toBe(row?.sha256);
  });
});
