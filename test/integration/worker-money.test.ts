/**
 * Invariant 2: KIE never charges a batch more than its budget, whatever the network does to the
 * create replies. Every create attempt holds its own reservation; one whose reply was lost keeps
 * it as spent-uncertain, and the retry reserves again within the budget.
 */
import { describe, expect, it } from "vitest";
import { readBatchStatus } from "../../src/report/status.js";
import { batchLines } from "../../src/report/status-text.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

describe("worker: money under lost create replies", () => {
  const harnesses = harnessPerTest();

  it("a budget of 30 is never charged past 30 when create replies are lost", async () => {
    const h = await harnesses.start();
    const { ledger, sim } = h.pipeline;
    const rows = Array.from({ length: 6 }, (_, i) => ({ id: `m-${i + 1}`, estimatedCredits: 8 }));
    await ledger.addRows(
      "money",
      rows.map((row, i) => ({ ...row, line: i + 2, prompt: `a kite ${i}`, params: {}, metadata: {} })),
      { budget: 30 },
    );
    // The first two creates are made and charged by KIE, and their replies never arrive. Retried
    // on their first reservations, as before, three rows cost 40 credits.
    sim.injectFaults("submit", { kind: "reset", afterCreate: true }, { kind: "reset", afterCreate: true });
    for (const { id } of rows) await h.pipeline.queues.addSubmit({ batch: "money", rowId: id, resubmit: 0 });
    await h.worker();

    // Settled: every row not waiting for budget is final, and every lost reply was met.
    const summary = await until(
      "the batch to settle with the rest of its rows waiting for budget",
      async () => {
        const s = await ledger.getBatch("money");
        const moving = (s?.submitted ?? 1) + (s?.generating ?? 1) + (s?.archiving ?? 1);
        return s && s.uncertain >= 2 && moving === 0 && s.queued === s.waitingBudget ? s : false;
      },
      { timeoutMs: 30_000 },
    );
    const charged = sim.stats().creditsCharged;
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThanOrEqual(30);
    // What `uncertain` costs: each lost reply holds its reservation against the budget for good.
    expect(summary.creditsUncertain).toBe(8 * summary.uncertain);
    expect(summary.creditsSpent + summary.creditsUncertain + summary.creditsReserved).toBeLessThanOrEqual(30);
    expect(charged).toBeLessThanOrEqual(summary.creditsSpent + summary.creditsUncertain);
    expect(summary.waitingBudget).toBeGreaterThan(0);

    // `status` shows what the uncertain submits hold of the budget (text and --json).
    const status = await readBatchStatus(
      { ledger, fleet: async () => ({ paused: null, accounts: [] }), clock: { now: () => Date.now() } },
      "money",
    );
    expect(status.creditsUncertain).toBe(summary.creditsUncertain);
    expect(batchLines(status).join("\n")).toContain(
      `uncertain submits (maybe paid twice): ${summary.uncertain} (${summary.creditsUncertain} credits held against the budget)`,
    );
  }, 60_000);
});
