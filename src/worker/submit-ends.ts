import type { Ledger } from "../ledger/index.js";
import type { SubmitJob } from "./jobs.js";
import type { StageQueues } from "./ports.js";

/**
 * BullMQ gave up on a submit job and its row was failed from `queued`: the row's reservation
 * goes back, or, when the job died with a create on the wire, stays as spent-uncertain.
 */
export async function giveUpSubmit(
  data: SubmitJob,
  deps: { ledger: Pick<Ledger, "keepUncertain" | "releaseReservation"> },
): Promise<void> {
  if (data.creating !== undefined) await deps.ledger.keepUncertain(data.batch, data.rowId, 0);
  else await deps.ledger.releaseReservation(data.batch, data.rowId);
}

/**
 * A parked job is completed and removed now. A wake that came between the parking and the removal
 * could not add the row's job (its id was still taken): the row is queued, no longer parked, and
 * without a job, so it gets it here (an add under the same id is one job).
 */
export async function afterParked(
  data: SubmitJob,
  deps: { ledger: Pick<Ledger, "getRow" | "releaseReservation">; queues: Pick<StageQueues, "addSubmit"> },
) {
  const row = await deps.ledger.getRow(data.batch, data.rowId);
  // A row cancelled in that window gives back what the wake reserved for it: nothing else would.
  if (row?.status === "cancelled" && row.creditsReserved > 0) {
    await deps.ledger.releaseReservation(data.batch, data.rowId);
    return;
  }
  if (row?.status !== "queued" || row.waitingBudget || row.taskIds[data.resubmit] !== undefined) return;
  await deps.queues.addSubmit({ batch: data.batch, rowId: data.rowId, resubmit: data.resubmit });
}
