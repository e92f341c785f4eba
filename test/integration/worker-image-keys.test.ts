/**
 * Tasks with several images, through the real worker assembly against the simulator and the
 * folder store: a row's second image is named after `@`, which no row id holds, so row `x`'s
 * second image and row `x-2`'s first are two files (before, both were `x-2.png`, and the later
 * write replaced the other row's image while both rows read archived).
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { writeResults } from "../../src/report/results.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe("worker: the keys of a task's several images", () => {
  const harnesses = harnessPerTest();

  it("row x's second image and row x-2's first are two files, each the bytes its row records", async () => {
    // The jobs flavour answers a task's images as a list (the qwen flavour names one).
    const h = await harnesses.start({ sim: { imagesPerTask: 2 }, env: { KIE_API_FLAVOR: "jobs" } });
    await h.worker();
    await h.pipeline.addRows("b", [
      { id: "x", prompt: "a lighthouse at dusk", params: { seed: 7 } },
      { id: "x-2", prompt: "a fox in the snow", params: { seed: 8 } },
    ]);
    expect(await h.pipeline.waitFinished("b")).toMatchObject({ total: 2, archived: 2 });

    const files = (await readdir(join(h.pipeline.archiveDir, "b"))).filter((name) => !name.startsWith("."));
    expect(files.sort()).toEqual(["x-2.json", "x-2.png", "x-2@2.png", "x.json", "x.png", "x@2.png"]);
    const stored = new Map<string, string>();
    for (const id of ["x", "x-2"]) {
      const row = await h.pipeline.ledger.getRow("b", id);
      expect(row?.images.map((image) => image.key)).toEqual([`b/${id}.png`, `b/${id}@2.png`]);
      for (const image of row!.images) {
        const bytes = await readFile(join(h.pipeline.archiveDir, image.key));
        expect(sha256(bytes), image.key).toBe(image.sha256);
        stored.set(image.key, image.sha256);
      }
    }
    // Four pictures, four files: none written over another.
    expect(new Set(stored.values()).size).toBe(4);
    // The results name the first image and say how many the row has.
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (chunk: Buffer) => chunks.push(chunk));
    await writeResults({ ledger: h.pipeline.ledger }, "b", "jsonl", out);
    const records = Buffer.concat(chunks)
      .toString("utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.map((r) => [r.id, r.images, r.location])).toEqual([
      ["x", 2, join(h.pipeline.archiveDir, "b/x.png")],
      ["x-2", 2, join(h.pipeline.archiveDir, "b/x-2.png")],
    ]);

    // The same seeded requests in another batch are reused: both images copied from the
    // sidecar's list (which names the second `x@2.png`), nothing created again.
    // A row reads archived a moment before its result index entry is written (its own command).
    await until(
      "both requests' result index entries",
      async () => (await h.pipeline.redis.keys(`{${h.pipeline.prefix}:reuse:results:?}:*`)).length >= 2,
    );
    const created = h.pipeline.sim.stats().createdTaskIds.length;
    await h.pipeline.addRows("c", [{ id: "y", prompt: "a lighthouse at dusk", params: { seed: 7 } }]);
    expect(await h.pipeline.waitFinished("c")).toMatchObject({ total: 1, archived: 1 });
    expect(h.pipeline.sim.stats().createdTaskIds.length).toBe(created);
    const reused = await h.pipeline.ledger.getRow("c", "y");
    expect(reused).toMatchObject({ reusedFrom: "b/x", creditsSpent: 0 });
    expect(reused?.images.map((image) => [image.key, image.sha256])).toEqual([
      ["c/y.png", stored.get("b/x.png")],
      ["c/y@2.png", stored.get("b/x@2.png")],
    ]);
  }, 60_000);
});
