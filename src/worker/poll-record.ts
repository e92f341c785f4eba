/**
 * A Redis failover can lose the record of a task: the row's master died before a replica had the
 * write, so the row reads `queued` (or `cancelled`) again without the task, while this poll job
 * still holds it. Left so, the reconciler would give the row a submit and it would be paid for
 * twice. The poll records the task again, with the submit's own transition, and goes on.
 */
import type { Ledger } from "../ledger/index.js";
import type { RowRecord, RowState } from "../ledger/types.js";
import type { PollJob } from "./jobs.js";
import type { StageJob } from "./stage.js";

/** True when the row has lost the record of the job's task (and holds no later one). */
export function recordLost(row: RowState, data: PollJob): boolean {
  return (
    (row.status === "queued" || row.status === "cancelled") &&
    row.taskIds.length === data.resubmit &&
    !row.taskIds.includes(data.taskId)
  );
}

/** Records the job's task in its row again; the row as it is after (undefined: purged). */
export async function recordAgain(
  job: StageJob<PollJob>,
  ledger: Pick<Ledger, "transition">,
): Promise<RowRecord | undefined> {
  const { batch, rowId, taskId, submittedAt, taskKey } = job.data;
  const recorded = await ledger.transition(batch, rowId, {
    from: ["queued", "cancelled"],
    to: "submitted",
    addTaskId: taskId,
    ...(taskKey ? { taskKey } : {}),
    set: { submittedAt, error: null },
  });
  job.log.warn(
    {
      taskId,
      recorded: recorded.ok,
      ...(recorded.unreplicated ? { unreplicated: recorded.unreplicated } : {}),
    },
    "the row had lost the record of this poll's task (a Redis failover?): recorded again, polling on",
  );
  return recorded.row;
}
