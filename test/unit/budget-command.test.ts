/**
 * `kie-batch budget` says what the new budget set going: parked rows woken and, for a batch with
 * a submit window, held rows fed (a raise that wakes no parked row may still let cheaper held
 * rows go, and the operator should see it).
 */
import { describe, expect, it } from "vitest";
import { setBatchBudget } from "../../src/commands/budget.js";
import type { BatchSummary } from "../../src/ledger/index.js";
import { Collector } from "../integration/ops-helpers.js";

function summary(extra: Partial<BatchSummary> = {}): BatchSummary {
  return {
    batch: "bw",
    total: 6,
    queued: 3,
    submitted: 0,
    generating: 0,
    archiving: 0,
    archived: 3,
    failed: 0,
    cancelled: 0,
    creditsEstimated: 40,
    creditsReserved: 0,
    creditsSpent: 12,
    creditsUncertain: 0,
    waitingBudget: 1,
    ...extra,
  } as BatchSummary;
}

describe("budget", () => {
  it("names the held rows the raise fed, beside the parked rows it woke", async () => {
    const added: string[] = [];
    let fed = false;
    const ledger = {
      getBatch: async () => summary({ budget: 12 }),
      listBatches: async () => [],
      setBudget: async () => true,
      wakeParked: async () => ({ woken: [] }),
      feedWindow: async () => {
        if (fed) return { fed: [], more: false };
        fed = true;
        return { fed: ["d", "e"].map((rowId) => ({ rowId, resubmit: 0 })), more: false };
      },
    };
    const queues = {
      addSubmit: async () => undefined,
      addSubmitBulk: async (jobs: { rowId: string }[]) => {
        added.push(...jobs.map(({ rowId }) => rowId));
      },
    };
    const out = new Collector();
    await setBatchBudget({ ledger, queues, out } as never, "bw", 20);
    expect(added).toEqual(["d", "e"]);
    expect(out.text()).toContain("  2 rows held back by the submit window go now");
    expect(out.text()).not.toContain("that were waiting for budget go now");
  });

  it("of a cancelled batch with rows waiting: says the reconciler cancels them, or a cancel run again now", async () => {
    const ledger = {
      getBatch: async () => summary({ budget: 12, cancelledAt: 1, held: 2 }),
      listBatches: async () => [],
      setBudget: async () => true,
      wakeParked: async () => ({ woken: [] }),
      feedWindow: async () => ({ fed: [], more: false }),
    };
    const queues = { addSubmit: async () => undefined, addSubmitBulk: async () => undefined };
    const out = new Collector();
    await setBatchBudget({ ledger, queues, out } as never, "bw", 20);
    expect(out.text()).toContain(
      "the batch was cancelled: no row of it is woken or fed; a running worker's next reconciler sweep cancels the rows left (`kie-batch cancel bw` again does it now); `kie-batch retry bw` before then lets them go on",
    );
  });
});
