import { afterEach, describe, expect, it } from "vitest";
import { startWorker } from "../../src/app/index.js";
import { retryBatch } from "../../src/commands/retry.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { accountId } from "../../src/fleet/index.js";
import { registeredAccounts } from "../../src/report/accounts.js";
import { type Pipeline, startPipeline } from "../helpers/pipeline.js";
import { Collector } from "./ops-helpers.js";

/** `kie-batch retry` against real workers and the simulator: what the operator gets back. */
describe("retry through the worker pipeline", () => {
  let pipeline: Pipeline | undefined;
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    await pipeline?.close();
    stop = undefined;
    pipeline = undefined;
  });

  async function start(options: Parameters<typeof startPipeline>[0]): Promise<Pipeline> {
    pipeline = await startPipeline(options);
    const running = await startWorker(pipeline.config, silentLogger());
    stop = () => running.close(5_000);
    return pipeline;
  }

  function retry(p: Pipeline) {
    return retryBatch({ ledger: p.ledger, queues: p.queues, clock: systemClock, out: new Collector() }, "b1");
  }

  it("a task that finished after KIE_MAX_WAIT is archived by retry, without a second create", async () => {
    const p = await start({
      sim: { latency: { minMs: 600_000, maxMs: 600_000 } },
      env: { KIE_MAX_WAIT: "1s", KIE_POLL_INTERVAL: "200ms" },
    });
    // The worker registered its account for commands that run without KIE_API_KEY.
    expect(await registeredAccounts(p.redis, p.prefix)).toEqual([accountId(p.apiKey)]);
    await p.addRows("b1", [{ id: "late" }]);
    expect(await p.waitFinished("b1")).toMatchObject({ failed: 1 });
    expect((await p.ledger.getRow("b1", "late"))?.error).toContain("KIE_MAX_WAIT");

    p.sim.completeAll();
    expect(await retry(p)).toEqual({ repolled: 1, requeued: 0, skipped: 0 });
    expect(await p.waitFinished("b1")).toMatchObject({ archived: 1, failed: 0 });
    const row = await p.ledger.getRow("b1", "late");
    expect(row?.taskIds).toHaveLength(1);
    expect(row?.location).toBeDefined();
    expect(p.sim.stats().creates).toBe(1);
  });

  it("a task that failed is resubmitted by retry even past KIE_MAX_RESUBMITS, and then archived", async () => {
    const p = await start({ env: { KIE_MAX_RESUBMITS: "0", KIE_POLL_INTERVAL: "200ms" } });
    p.sim.setNextOutcome("fail");
    await p.addRows("b1", [{ id: "unlucky" }]);
    expect(await p.waitFinished("b1")).toMatchObject({ failed: 1, resubmits: 0 });

    p.sim.setNextOutcome(undefined);
    expect(await retry(p)).toEqual({ repolled: 1, requeued: 0, skipped: 0 });
    expect(await p.waitFinished("b1")).toMatchObject({ archived: 1, failed: 0, resubmits: 1 });
    expect((await p.ledger.getRow("b1", "unlucky"))?.taskIds).toHaveLength(2);
    expect(p.sim.stats().creates).toBe(2);
  });
});
