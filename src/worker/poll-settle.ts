/**
 * What a poll that finds its task ended does with the task's cost (poll.ts): the settle of a
 * failed task, and the warning when KIE states a cost above the row's estimate.
 */
import type { TaskRecord } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { RowState } from "../ledger/types.js";
import type { PollJob } from "./jobs.js";
import type { StageJob } from "./stage.js";

/**
 * Settles the task's cost, once per task and as this task (a run about a task the row has left
 * settles nothing of the new one's). An unstated cost settles at the row's estimate, which its
 * reservation holds: never past the budget. A stated cost above the estimate is said, once: the
 * budget bound rests on the estimates, so a price table below the account's can pass it.
 */
export async function settleTask(
  job: StageJob<PollJob>,
  ledger: Pick<Ledger, "settleCredits">,
  row: Pick<RowState, "estimatedCredits">,
  record: TaskRecord,
) {
  const { batch, rowId, taskId } = job.data;
  const outcome = await ledger.settleCredits(
    batch,
    rowId,
    record.creditsConsumed ?? row.estimatedCredits,
    taskId,
  );
  if (outcome === "settled") chargedOverEstimate(job, row, record);
}

/** A stated cost above the row's estimate, said once (when its settle counted it). */
export function chargedOverEstimate(
  job: StageJob<PollJob>,
  row: Pick<RowState, "estimatedCredits">,
  record: TaskRecord,
) {
  const charged = record.creditsConsumed;
  if (charged === undefined || charged <= row.estimatedCredits) return;
  job.log.warn(
    { taskId: record.taskId, creditsConsumed: charged, estimatedCredits: row.estimatedCredits },
    "KIE charged more than the row's estimate: the batch's budget can be passed by the difference; set the account's prices with KIE_PRICES",
  );
}
