/**
 * After a parked submit job is completed (and removed), the runner calls the stage's `onParked`:
 * a wake that came in between could not add the row's job (the id was still taken), so the job
 * is added here; a row still parked, or moved on, gets none.
 */
import { describe, expect, it } from "vitest";
import type { RowRecord } from "../../src/ledger/types.js";
import type { SubmitJob } from "../../src/worker/jobs.js";
import type { StageDeps } from "../../src/worker/ports.js";
import { submitStage } from "../../src/worker/submit.js";
import { oneRowLedger, rowRecord } from "../helpers/stage-fakes.js";

async function afterParked(row: Partial<RowRecord>, released: string[] = []): Promise<SubmitJob[]> {
  const ledger = oneRowLedger(rowRecord(row));
  const added: SubmitJob[] = [];
  const deps = {
    ledger: {
      getRow: ledger.getRow,
      getBatch: async (batch: string) => ({ batch, priority: 3 }),
      releaseReservation: async (_batch: string, rowId: string) => {
        released.push(rowId);
        return 8;
      },
    },
    queues: {
      addSubmit: async (data: SubmitJob, options?: { priority?: number }) => {
        added.push({ ...data, ...options });
      },
    },
  } as unknown as StageDeps;
  await submitStage.onParked({ batch: "b", rowId: "r1", resubmit: 0 }, deps);
  return added;
}

describe("submit stage: after a parked job ends", () => {
  it("adds the job of a row woken meanwhile", async () => {
    // At the batch's priority, as a wake adds it.
    expect(await afterParked({ status: "queued", waitingBudget: false })).toEqual([
      { batch: "b", rowId: "r1", resubmit: 0, priority: 3 },
    ]);
  });

  it.each([
    ["still parked", { status: "queued" as const, waitingBudget: true }],
    ["cancelled", { status: "cancelled" as const, waitingBudget: false }],
    ["submitted by another job", { status: "queued" as const, waitingBudget: false, taskIds: ["t-1"] }],
  ])("adds nothing for a row %s", async (_name, row) => {
    expect(await afterParked(row)).toEqual([]);
  });

  it("gives back what a wake reserved for a row cancelled before its job ended", async () => {
    const released: string[] = [];
    expect(await afterParked({ status: "cancelled", creditsReserved: 8 }, released)).toEqual([]);
    expect(released).toEqual(["r1"]);
  });
});
