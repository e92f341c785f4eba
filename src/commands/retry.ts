import type { Clock } from "../core/clock.js";
import type { Ledger, RowRecord } from "../ledger/index.js";
import { requireBatch } from "../report/batch.js";
import type { OpsLedger, OpsQueues, Output } from "../report/types.js";
import { jobKey } from "../worker/jobs.js";
import type { ReconcileReport } from "../worker/reconcile.js";
import { forEachLimit, iterate, removeStageJob } from "./jobs.js";

/** Rows handled at once: each is a handful of round trips. */
const CONCURRENCY = 16;

export interface RetryDeps {
  ledger: Pick<OpsLedger, "getBatch" | "listBatches" | "transition"> &
    Pick<Ledger, "ensureStateIndex" | "drainState" | "getRow">;
  queues: OpsQueues;
  clock: Pick<Clock, "now">;
  out: Output;
  queuePrefix?: string;
  /**
   * The reconciler's sweep of the batch, run after the failed rows are back: rows stuck in a
   * state without a job (a worker died in between) get theirs. Absent: not run.
   */
  reconcile?: (batch: string) => Promise<Pick<ReconcileReport, "requeued" | "failed">>;
}

export interface RetryReport {
  /** Failed rows with a task: polled again, resubmitted only if that task failed or is unknown. */
  repolled: number;
  /** Failed rows without a task (they failed at submit): back to the submit stage. */
  requeued: number;
  /**
   * Rows left failed: a worker still held one of their jobs (they are moved back), or another
   * retry or a job moved them since they were read.
   */
  skipped: number;
  /** Rows the reconciler gave a lost job back (or failed, their job given up); only when it ran. */
  repaired?: number;
}

/** What happened to one failed row. */
type RowOutcome = "repolled" | "requeued" | "skipped";

/**
 * `kie-batch retry`: every failed row goes back into the pipeline; archived rows are never touched.
 *
 * A row with a recorded task is polled again first (its latest task may have finished late and is
 * then archived without paying again); the poll job carries `resubmitOnFailure`, so a task that
 * failed or is unknown is resubmitted even past KIE_MAX_RESUBMITS. A row that never got a task is
 * requeued for submit. Every status change goes through `ledger.transition`, so the batch's
 * counters stay exact, and a batch that had finished is reopened by it.
 */
export async function retryBatch(
  deps: RetryDeps,
  batch: string,
  /** Only the failed rows it accepts (the dashboard's retry of one row or one error); all when absent. */
  only?: (row: RowRecord) => boolean,
): Promise<RetryReport> {
  await requireBatch(deps.ledger, batch, deps.queuePrefix);
  const report: RetryReport = { repolled: 0, requeued: 0, skipped: 0 };
  // The failed rows only, from their index: ten failed rows of a million cost ten reads. A page is
  // finished before the next is read (the walk's rule: rows leave the index as they are retried).
  await deps.ledger.ensureStateIndex(batch);
  for await (const page of deps.ledger.drainState(batch, "failed")) {
    await forEachLimit(iterate(page), CONCURRENCY, async ({ row }) => {
      if (only && !only(row)) return;
      report[await retryOne(deps, row)]++;
    });
  }
  const { out } = deps;
  if (deps.reconcile) {
    const swept = await deps.reconcile(batch);
    report.repaired = swept.requeued + swept.failed;
    if (report.repaired > 0) {
      out.write(
        `batch ${batch}: ${report.repaired} rows had no job behind their state (a worker stopped mid-step): repaired\n`,
      );
    }
  }
  if (report.repolled + report.requeued + report.skipped === 0) {
    out.write(`batch ${batch}: no failed rows\n`);
    return report;
  }
  out.write(
    `batch ${batch}: ${report.repolled} failed rows re-polled (a task that finished late is archived without paying again; one that failed is resubmitted)\n`,
  );
  out.write(`batch ${batch}: ${report.requeued} failed rows requeued for submit (they never got a task)\n`);
  if (report.skipped > 0) {
    out.write(
      `batch ${batch}: ${report.skipped} rows skipped (a worker still holds one of their jobs, or they moved meanwhile): run retry again later\n`,
    );
  }
  return report;
}

/**
 * The dashboard's retry of one row: reads that row only (no walk of the failed index, no sweep of
 * the batch); a row that is not failed is left alone (the report counts nothing).
 */
export async function retryRow(deps: RetryDeps, batch: string, rowId: string): Promise<RetryReport> {
  await requireBatch(deps.ledger, batch, deps.queuePrefix);
  const report: RetryReport = { repolled: 0, requeued: 0, skipped: 0 };
  const row = await deps.ledger.getRow(batch, rowId);
  if (row?.status !== "failed") return report;
  report[await retryOne(deps, row)]++;
  return report;
}

/**
 * One failed row back into the pipeline, as `seen` (read once, by the walk or by `retryRow`) says.
 * The move out of `failed` comes first and is the claim: `transition.lua` checks and moves in one
 * step, so of two retries of one row (two clicks, a row and its group, the CLI and the dashboard,
 * in any processes) one moves it and the other is refused and touches no job: only the one that
 * moved the row removes its stale jobs, so none removes a job another has just added. The row the
 * move returns, not `seen`, names the task to poll and the jobs to clear: if the row was retried
 * and failed again since it was read, its latest task is the one that may still finish.
 */
async function retryOne(deps: RetryDeps, seen: RowRecord): Promise<RowOutcome> {
  const { batch, id } = seen;
  const submittedAt = deps.clock.now();
  if (hasTask(seen)) {
    const moved = await deps.ledger.transition(batch, id, {
      from: ["failed"],
      to: "submitted",
      set: { error: null, submittedAt },
    });
    if (!moved.ok || !moved.row) return "skipped";
    return pollAgain(deps, moved.row, seen, submittedAt);
  }
  const moved = await deps.ledger.transition(batch, id, {
    from: ["failed"],
    to: "queued",
    set: { error: null },
  });
  if (!moved.ok || !moved.row) return "skipped";
  if (!hasTask(moved.row)) return submitAgain(deps, moved.row, seen);
  // Read before it had a task, and it has one now (retried, created and failed again since the
  // read): a submit job could create a second task while that one may still finish. It is
  // re-polled instead, as a retry that read it now would do.
  const submitted = await deps.ledger.transition(batch, id, {
    from: ["queued"],
    to: "submitted",
    set: { submittedAt },
  });
  if (!submitted.ok || !submitted.row) return "skipped";
  return pollAgain(deps, submitted.row, seen, submittedAt);
}

function hasTask(row: RowRecord): boolean {
  return row.taskIds.length > 0 || row.taskId !== undefined;
}

/**
 * The row is this retry's (moved to submitted): clear the stale jobs of its ids, then poll its
 * latest task. A job a worker still holds would finish (and be removed) after our add, which then
 * found its id taken: the row goes back to failed and is skipped, as if never moved (none of those
 * jobs creates a task from a submitted row: a submit job creates only from queued).
 */
async function pollAgain(
  deps: RetryDeps,
  row: RowRecord,
  seen: RowRecord,
  submittedAt: number,
): Promise<RowOutcome> {
  const { batch, id } = row;
  const lineage = Math.max(0, row.taskIds.length - 1);
  const taskId = row.taskIds[lineage] ?? row.taskId!;
  // The poll job of this lineage; the archive job (one id per row) a success will add; the submit
  // job of the next lineage a failure will add. Any of them may be a failed job kept for a week.
  const stale = await Promise.all([
    removeStageJob(deps.queues, "poll", jobKey(batch, id, lineage)),
    removeStageJob(deps.queues, "archive", jobKey(batch, id)),
    removeStageJob(deps.queues, "submit", jobKey(batch, id, row.taskIds.length)),
  ]);
  if (stale.includes("active")) {
    await restoreFailed(deps, seen, "submitted");
    return "skipped";
  }
  try {
    await deps.queues.addPoll(
      { batch, rowId: id, taskId, resubmit: lineage, submittedAt, checks: 0, resubmitOnFailure: true },
      0,
    );
  } catch (error) {
    await restoreFailed(deps, seen, "submitted");
    throw error;
  }
  return "repolled";
}

/**
 * The row is this retry's (moved to queued, no task yet): clear a stale submit job of its lineage,
 * then add its submit job. A submit job of that id a worker holds is left to go on, the row queued:
 * it is the row's submit job (it creates while the row is queued, and records from queued), and
 * moving the row back to failed under a create on the wire would leave that task unrecorded for a
 * later retry to pay twice. If it had already ended, the reconciler gives the row its job.
 */
async function submitAgain(deps: RetryDeps, row: RowRecord, seen: RowRecord): Promise<RowOutcome> {
  const { batch, id } = row;
  const lineage = row.taskIds.length;
  if ((await removeStageJob(deps.queues, "submit", jobKey(batch, id, lineage))) === "active")
    return "requeued";
  try {
    await deps.queues.addSubmit({ batch, rowId: id, resubmit: lineage });
  } catch (error) {
    await restoreFailed(deps, seen, "queued");
    throw error;
  }
  return "requeued";
}

/**
 * The row goes back to failed, with the error it was read with, so a later retry finds it: its job
 * could not be added, or a worker still held one of its jobs. Only from the state this retry moved
 * it to: a job that moved it on meanwhile keeps it.
 */
async function restoreFailed(deps: RetryDeps, row: RowRecord, from: "submitted" | "queued"): Promise<void> {
  await deps.ledger
    .transition(row.batch, row.id, { from: [from], to: "failed", set: { error: row.error ?? null } })
    .catch(() => undefined);
}
