/**
 * Rows over the budget park through the real worker (issue 10): a batch whose budget holds 3 of
 * its 10 rows submits 3 and parks 7, with no job and nothing scheduled for them; a raised budget
 * wakes exactly as many as fit, a row failed without a create wakes one with its released
 * reservation, and `budget none` wakes every one.
 */
import { describe, expect, it } from "vitest";
import { setBatchBudget } from "../../src/commands/budget.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";
import { Collector } from "./ops-helpers.js";

const ids = Array.from({ length: 10 }, (_, i) => `r-${String(i + 1).padStart(2, "0")}`);

describe("worker: rows parked over the budget", () => {
  const harnesses = harnessPerTest();

  it("cost no job while parked, and wake as the budget allows", async () => {
    const h = await harnesses.start();
    const { ledger, sim, queues } = h.pipeline;
    await ledger.addRows(
      "park",
      ids.map((id, i) => ({
        id,
        line: i + 2,
        prompt: `lighthouse ${i}`,
        params: {},
        metadata: {},
        estimatedCredits: 8,
      })),
      { budget: 24 },
    );
    for (const id of ids) await queues.addSubmit({ batch: "park", rowId: id, resubmit: 0 });
    const first = await h.worker();
    const submit = queues.queues.submit;
    const settled = async (archived: number, failed: number, waiting: number) =>
      until(`${archived} archived, ${failed} failed, ${waiting} parked, no submit job left`, async () => {
        const s = await ledger.getBatch("park");
        if (s?.archived !== archived || s.failed !== failed || s.waitingBudget !== waiting) return false;
        const counts = await submit.getJobCounts("active", "waiting", "delayed", "prioritized");
        return Object.values(counts).every((n) => n === 0) ? s : false;
      });

    // 3 submitted, 7 parked: no job, nothing delayed, no create.
    expect(await settled(3, 0, 7)).toMatchObject({ queued: 7, creditsSpent: 24 });
    expect(sim.stats().creates).toBe(3);
    for (const id of ids.slice(3)) expect(await submit.getJob(`park/${id}`)).toBeUndefined();

    // Room for one more: exactly one wakes. Its create is refused (no task, no charge), so it
    // fails and its released reservation wakes the next one, which goes through. The worker is
    // stopped for the raise so the command is the only one waking rows (a sweep or a settle of
    // the running worker may otherwise wake that row first, and the command rightly says 0), then
    // a new one takes the woken row.
    await first.close(5_000);
    sim.injectFaults("submit", { kind: "code", code: 422, msg: "prompt refused" });
    const out = new Collector();
    await setBatchBudget({ ledger, queues, out }, "park", 32);
    expect(out.text()).toContain("1 rows that were waiting for budget go now");
    expect(out.text()).toContain("6 rows are waiting for budget");
    await h.worker();
    const afterRaise = await settled(4, 1, 5);
    expect(afterRaise).toMatchObject({ creditsSpent: 32, creditsReserved: 0 });
    expect((await ledger.getRow("park", "r-04"))?.status).toBe("failed");
    expect((await ledger.getRow("park", "r-05"))?.status).toBe("archived");
    expect(sim.stats().creates).toBe(4);

    // No budget: every parked row wakes and finishes.
    await setBatchBudget({ ledger, queues, out: new Collector() }, "park", null);
    const done = await h.pipeline.waitFinished("park", 15_000);
    expect(done).toMatchObject({ archived: 9, failed: 1, waitingBudget: 0, creditsSpent: 72 });
    expect(sim.stats().creates).toBe(9);
  }, 60_000);
});
