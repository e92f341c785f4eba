/**
 * A batch budget: rows that would take the batch past it wait (shown as waitingBudget) without
 * a create, parked with no job, and a raised budget lets them through with no restart.
 */
import { describe, expect, it } from "vitest";
import { setBatchBudget } from "../../src/commands/budget.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";
import { Collector } from "./ops-helpers.js";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `r-${i + 1}` }));

describe("worker: batch budget", () => {
  const harnesses = harnessPerTest();

  it("rows over the budget wait without a create, and go once the budget is raised", async () => {
    const h = await harnesses.start();
    const { ledger, sim } = h.pipeline;
    // Rows enter the ledger first, so the budget is in force before any submit runs.
    await ledger.addRows(
      "bbud",
      rows(4).map((row, i) => ({
        ...row,
        line: i + 2,
        prompt: `harbour ${i}`,
        params: {},
        metadata: {},
        estimatedCredits: 8,
      })),
    );
    expect(await ledger.setBudget("bbud", 16)).toBe(true); // two images at 8 credits
    for (const { id } of rows(4))
      await h.pipeline.queues.addSubmit({ batch: "bbud", rowId: id, resubmit: 0 });
    await h.worker();

    const held = await until("two rows archived and two waiting for budget", async () => {
      const batch = await ledger.getBatch("bbud");
      return batch?.archived === 2 && batch.waitingBudget === 2 ? batch : false;
    });
    expect(held).toMatchObject({ queued: 2, failed: 0, creditsSpent: 16 });
    // They keep waiting, parked: no job and nothing scheduled for them, and not one create.
    const createsBefore = sim.stats().creates;
    expect(createsBefore).toBe(2);
    const waiting = h.pipeline.queues.queues.submit;
    await until("the parked rows' jobs to end", async () => (await waiting.getJobCounts()).active === 0);
    expect(await waiting.getJob("bbud/r-3")).toBeUndefined();
    expect(await waiting.getJob("bbud/r-4")).toBeUndefined();
    expect(await waiting.getJobCounts("delayed", "waiting", "active")).toEqual({
      delayed: 0,
      waiting: 0,
      active: 0,
    });
    expect(sim.stats().creates).toBe(2);
    expect(await ledger.getBatch("bbud")).toMatchObject({ waitingBudget: 2, queued: 2 });

    const raised = await setBatchBudget(
      { ledger, queues: h.pipeline.queues, out: new Collector() },
      "bbud",
      40,
    );
    expect(raised.budget).toBe(40);
    const summary = await h.pipeline.waitFinished("bbud", 10_000);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0, waitingBudget: 0, creditsSpent: 32 });
    expect(sim.stats().creates).toBe(4);
  });
});
