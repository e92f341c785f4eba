/**
 * A batch budget: rows that would take the batch past it wait (shown as waitingBudget) without
 * a create, and a raised budget lets them through with no restart.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startHarness, until, type WorkerHarness } from "../helpers/worker-harness.js";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `r-${i + 1}` }));

describe("worker: batch budget", () => {
  let h: WorkerHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("rows over the budget wait without a create, and go once the budget is raised", async () => {
    h = await startHarness();
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
    await h.worker({ settings: { budgetRecheckMs: 300 } });

    const held = await until("two rows archived and two waiting for budget", async () => {
      const batch = await ledger.getBatch("bbud");
      return batch?.archived === 2 && batch.waitingBudget === 2 ? batch : false;
    });
    expect(held).toMatchObject({ queued: 2, failed: 0, creditsSpent: 16 });
    // They keep waiting across rechecks, and not one create is made for them.
    const createsBefore = sim.stats().creates;
    expect(createsBefore).toBe(2);
    const waiting = h.pipeline.queues.queues.submit;
    const firstRun = (await waiting.getJob("bbud/r-3"))?.processedOn ?? 0;
    await until("a few budget rechecks", async () => {
      const job = await waiting.getJob("bbud/r-3");
      return (job?.processedOn ?? 0) > firstRun + 600;
    });
    expect(sim.stats().creates).toBe(2);
    expect(await ledger.getBatch("bbud")).toMatchObject({ waitingBudget: 2, queued: 2 });

    expect(await ledger.setBudget("bbud", 40)).toBe(true);
    const summary = await h.pipeline.waitFinished("bbud", 10_000);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0, waitingBudget: 0, creditsSpent: 32 });
    expect(sim.stats().creates).toBe(4);
  });
});
