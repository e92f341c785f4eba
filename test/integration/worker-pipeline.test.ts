import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startWorker } from "../../src/app/index.js";
import { createLogger, silentLogger } from "../../src/core/logger.js";
import { type Pipeline, startPipeline } from "../helpers/pipeline.js";

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("worker pipeline (real Redis, simulator, folder archive)", () => {
  let pipeline: Pipeline | undefined;
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    await pipeline?.close();
    stop = undefined;
    pipeline = undefined;
  });

  it("archives every row once, with checksums and a sidecar, and creates each task once", async () => {
    pipeline = await startPipeline({ sim: { timeScale: 1 } });
    const running = await startWorker(
      pipeline.config,
      process.env.TEST_LOG ? createLogger({ level: "debug" }) : silentLogger(),
    );
    stop = () => running.close(5_000);
    await pipeline.addRows("b1", [
      { id: "a", prompt: "一只在雪山上的红色狐狸", metadata: { 作者: "李" } },
      { id: "b", params: { output_format: "jpg", seed: 7 } },
      { id: "c", params: { acceleration_level: "high" }, estimatedCredits: 6 },
    ]);
    const summary = await pipeline.waitFinished("b1");
    expect(summary).toMatchObject({ total: 3, archived: 3, failed: 0 });
    expect(pipeline.sim.stats().creates).toBe(3);
    // credits: the simulator reports what it charged (none given -> 8, high -> 6)
    expect(summary.creditsSpent).toBe(8 + 8 + 6);

    const a = await pipeline.ledger.getRow("b1", "a");
    const bytes = await readFile(join(pipeline.archiveDir, "b1", "a.png"));
    expect(bytes.subarray(0, 8)).toEqual(PNG);
    expect(a?.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(a?.bytes).toBe(bytes.length);
    const sidecar = JSON.parse(await readFile(join(pipeline.archiveDir, "b1", "a.json"), "utf8"));
    expect(sidecar).toMatchObject({
      prompt: "一只在雪山上的红色狐狸",
      metadata: { 作者: "李" },
      taskId: a?.taskId,
    });

    const jpg = await readFile(join(pipeline.archiveDir, "b1", "b.jpg"));
    expect([...jpg.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
  });

  it("resubmits a failed generation once, then fails the row with the provider's message", async () => {
    pipeline = await startPipeline({ env: { KIE_MAX_RESUBMITS: "1" } });
    pipeline.sim.setNextOutcome("fail");
    const running = await startWorker(
      pipeline.config,
      process.env.TEST_LOG ? createLogger({ level: "debug" }) : silentLogger(),
    );
    stop = () => running.close(5_000);
    await pipeline.addRows("b2", [{ id: "x" }]);
    const summary = await pipeline.waitFinished("b2");
    expect(summary).toMatchObject({ total: 1, failed: 1, resubmits: 1 });
    const row = await pipeline.ledger.getRow("b2", "x");
    expect(row?.taskIds).toHaveLength(2);
    expect(row?.error).toMatch(/generation failed/);
    expect(pipeline.sim.stats().creates).toBe(2);
  });

  it("a 422 at submit fails the row with the API's message and creates nothing", async () => {
    pipeline = await startPipeline();
    const running = await startWorker(
      pipeline.config,
      process.env.TEST_LOG ? createLogger({ level: "debug" }) : silentLogger(),
    );
    stop = () => running.close(5_000);
    await pipeline.addRows("b3", [{ id: "bad", params: { num_inference_steps: 999 } }, { id: "good" }]);
    const summary = await pipeline.waitFinished("b3");
    expect(summary).toMatchObject({ total: 2, failed: 1, archived: 1 });
    expect((await pipeline.ledger.getRow("b3", "bad"))?.error).toMatch(/refused/);
    expect(pipeline.sim.stats().creates).toBe(1);
  });
});
