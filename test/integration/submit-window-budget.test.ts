/**
 * The submit window and the budget (issue 10): while a row of a window-managed batch waits for
 * budget, held rows that fit the room left are still fed, in manifest order, so one expensive
 * parked row never blocks cheaper rows behind it (as before the window, when every row had a job);
 * a raised budget wakes the parked row and the rest is fed until the batch finishes.
 */
import { describe, expect, it } from "vitest";
import { setBatchBudget } from "../../src/commands/budget.js";
import { feedSubmitWindow } from "../../src/worker/submit-window.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";
import { Collector } from "./ops-helpers.js";

const row = (id: string, line: number, estimatedCredits: number) => ({
  id,
  line,
  prompt: `lighthouse ${id}`,
  params: {},
  metadata: {},
  estimatedCredits,
});

describe("worker: a window-managed batch with rows waiting for budget", () => {
  const harnesses = harnessPerTest();

  it("feeds the held rows that fit the budget past an expensive parked row, and finishes once the budget is raised", async () => {
    const h = await harnesses.start();
    const { ledger, sim, queues } = h.pipeline;
    // Budget 12: `big` (20) never fits; the three rows of 4 behind it do. Window 1.
    await ledger.addRows("bw", [row("big", 2, 20), row("a", 3, 4), row("b", 4, 4), row("c", 5, 4)], {
      budget: 12,
      submitWindow: 1,
    });
    expect(await feedSubmitWindow({ ledger, queues }, "bw")).toBe(1);
    await h.worker();
    const settled = await until("big parked, a, b and c archived, nothing held", async () => {
      const s = await ledger.getBatch("bw");
      return s?.archived === 3 && s.waitingBudget === 1 && s.held === 0 ? s : false;
    });
    expect(settled).toMatchObject({ queued: 1, creditsSpent: 12, creditsReserved: 0 });
    expect((await ledger.getRow("bw", "big"))?.status).toBe("queued");
    expect(sim.stats().creates).toBe(3);

    const out = new Collector();
    await setBatchBudget({ ledger, queues, out }, "bw", 32);
    const done = await h.pipeline.waitFinished("bw", 15_000);
    expect(done).toMatchObject({ archived: 4, waitingBudget: 0, held: 0, creditsSpent: 32 });
    expect(sim.stats().creates).toBe(4);
  }, 60_000);

  it("parks a held row that does not fit (no job run) and feeds the cheaper rows behind it: two costly rows in a row do not stall the batch", async () => {
    const h = await harnesses.start();
    const { ledger, sim, queues } = h.pipeline;
    // Budget 12: big1 and big2 (20) never fit; the three rows of 4 behind them do. Window 1.
    await ledger.addRows(
      "bw",
      [row("big1", 2, 20), row("big2", 3, 20), row("a", 4, 4), row("b", 5, 4), row("c", 6, 4)],
      { budget: 12, submitWindow: 1 },
    );
    expect(await feedSubmitWindow({ ledger, queues }, "bw")).toBe(1);
    await h.worker();
    const settled = await until("big1 and big2 parked, a, b and c archived, nothing held", async () => {
      const s = await ledger.getBatch("bw");
      return s?.archived === 3 && s.waitingBudget === 2 && s.held === 0 ? s : false;
    });
    expect(settled).toMatchObject({ queued: 2, creditsSpent: 12, creditsReserved: 0 });
    for (const id of ["big1", "big2"])
      expect(await ledger.getRow("bw", id)).toMatchObject({ status: "queued", waitingBudget: true });
    expect(sim.stats().creates).toBe(3);
    // Both wake on a raise, in manifest order.
    await setBatchBudget({ ledger, queues, out: new Collector() }, "bw", 52);
    const done = await h.pipeline.waitFinished("bw", 15_000);
    expect(done).toMatchObject({ archived: 5, waitingBudget: 0, held: 0, creditsSpent: 52 });
  }, 60_000);

  it("feeds held rows that fit the room left after a raise that does not wake the parked row", async () => {
    const h = await harnesses.start();
    const { ledger, queues } = h.pipeline;
    // Budget 12: a, b, c (4 each) fill it; `big` (20) parks; d and e (4) are held behind it.
    await ledger.addRows(
      "bw",
      [row("a", 2, 4), row("b", 3, 4), row("c", 4, 4), row("big", 5, 20), row("d", 6, 4), row("e", 7, 4)],
      { budget: 12, submitWindow: 2 },
    );
    expect(await feedSubmitWindow({ ledger, queues }, "bw")).toBe(2);
    await h.worker();
    const stalled = await until("a, b, c archived, big parked, d and e held", async () => {
      const s = await ledger.getBatch("bw");
      return s?.archived === 3 && s.waitingBudget === 1 && s.held === 2 ? s : false;
    });
    expect(stalled).toMatchObject({ queued: 3, creditsSpent: 12 });
    // Room for d and e (8), not for big (20): the raise wakes nothing, d and e are fed and go.
    await setBatchBudget({ ledger, queues, out: new Collector() }, "bw", 20);
    const after = await until("d and e archived", async () => {
      const s = await ledger.getBatch("bw");
      return s?.archived === 5 ? s : false;
    });
    expect(after).toMatchObject({ queued: 1, waitingBudget: 1, held: 0, creditsSpent: 20 });
    expect((await ledger.getRow("bw", "big"))?.status).toBe("queued");
    await setBatchBudget({ ledger, queues, out: new Collector() }, "bw", null);
    expect(await h.pipeline.waitFinished("bw", 15_000)).toMatchObject({ archived: 6, waitingBudget: 0 });
  }, 60_000);
});
