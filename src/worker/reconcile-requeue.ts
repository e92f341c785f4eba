import type { Clock } from "../core/clock.js";
import type { RowState } from "../ledger/types.js";
import { jobKey, type PollJob, type Stage, type SubmitJob } from "./jobs.js";
import type { SubmitPriority } from "./ports.js";

/**
 * The reconciler's job side (reconcile.ts walks the ledger): where a row's job stands, the job id
 * its state needs, and the add that gives it back. No BullMQ here: the queues come as
 * `ReconcileJobs` (bull/reconcile-jobs.ts).
 */

/** Where a job id stands in its queue. */
export type JobPresence =
  /** Waiting, prioritized, delayed or active: something will run for the row. */
  | "live"
  /** BullMQ gave up on it (kept a week under its id). */
  | "failed"
  /** Completed but still kept under its id (jobs are removed on completion: rare). */
  | "completed"
  | "absent";

/** The queues, as the reconciler uses them (bull/reconcile-jobs.ts backs this with BullMQ). */
export interface ReconcileJobs {
  /** Per key, in order, where that job id stands in the stage's queue; one round trip per call. */
  presence(stage: Stage, keys: readonly string[]): Promise<JobPresence[]>;
  /** Frees a finished (failed or completed) job's id so a new job can take it. */
  removeFinished(stage: Stage, key: string): Promise<void>;
  /** A failed job's data, or undefined when it cannot be read. */
  failedJobData(stage: Stage, key: string): Promise<Record<string, unknown> | undefined>;
  addSubmit(data: SubmitJob, options: SubmitPriority): Promise<void>;
  addSubmitBulk(jobs: readonly SubmitJob[], options: SubmitPriority): Promise<void>;
  addPoll(data: PollJob, delayMs: number): Promise<void>;
}

/** The lineage of the row's current task (a resubmit's task ids follow the first one's). */
function lineageOf(row: RowState): number {
  const index = row.taskId === undefined ? -1 : row.taskIds.indexOf(row.taskId);
  return index >= 0 ? index : Math.max(0, row.taskIds.length - 1);
}

/** The job id the row's state needs in `stage`. */
export function stageKey(stage: Stage, row: RowState): string {
  switch (stage) {
    case "submit":
      // The next lineage: the submit stage creates task number `taskIds.length` (see runSubmit).
      return jobKey(row.batch, row.id, row.taskIds.length);
    case "poll":
      return jobKey(row.batch, row.id, lineageOf(row));
    case "archive":
      return jobKey(row.batch, row.id);
  }
}

/**
 * Adds the job the row's state needs; false when there was nothing to add. A submit job takes the
 * batch's priority, as enqueue and the feed give it (BullMQ runs unprioritised jobs first).
 */
export async function requeue(
  deps: { jobs: ReconcileJobs; clock: Pick<Clock, "now"> },
  stage: Stage,
  row: RowState,
  priority?: number,
): Promise<boolean> {
  const { batch, id: rowId } = row;
  if (stage === "submit") {
    await deps.jobs.addSubmit({ batch, rowId, resubmit: row.taskIds.length }, { priority });
    return true;
  }
  if (row.taskId === undefined) return false;
  const resubmit = lineageOf(row);
  const taskKey = row.taskKeys?.[row.taskId];
  const poll: PollJob = {
    batch,
    rowId,
    taskId: row.taskId,
    resubmit,
    submittedAt: row.submittedAt ?? deps.clock.now(),
    checks: 0,
    ...(taskKey ? { taskKey } : {}),
  };
  if (stage === "archive") {
    // The archive job needs the task's image URLs, which only KIE has: a poll of the row's task
    // finds the row archiving and adds the archive job (poll-archiving.ts). A live poll job will
    // do that by itself; a finished one's id must be freed first.
    const [pollJob] = await deps.jobs.presence("poll", [jobKey(batch, rowId, resubmit)]);
    if (pollJob === "live") return false;
    if (pollJob !== "absent") await deps.jobs.removeFinished("poll", jobKey(batch, rowId, resubmit));
  }
  await deps.jobs.addPoll(poll, 0);
  return true;
}
