import type { Clock } from "../core/clock.js";
import { type BatchSummary, batchPurgingError, type Ledger, type RowRecord } from "../ledger/index.js";
import { requireBatch } from "../report/batch.js";
import type { OpsLedger, OpsQueues, Output } from "../report/types.js";
import { jobKey } from "../worker/jobs.js";
import type { ReconcileReport } from "../worker/reconcile.js";
import { forEachLimit, iterate, removeStageJob } from "./jobs.js";

/** Rows handled at once: each is a handful of round trips. */
const CONCURRENCY = 16;

export interface RetryDeps {
  ledger: Pick<OpsLedger, "getBatch" | "listBatches" | "transition"> &
    Pick<Ledger, "ensureStateIndex" | "drainState" | "getRow" | "markCancelled">;
  queues: OpsQueues;
  clock: Pick<Clock, "now">;
  out: Output;
  queuePrefix?: string;
  /**
   * The reconciler's sweep of the batch, run after the failed rows are back: rows stuck in a
   * state without a job (a worker died in between) get theirs. Absent: not run.
   */
  reconcile?: (batch: string) => Promise<Pick<ReconcileReport, "requeued" | "failed" | "cancelled">>;
}

export interface RetryReport {
  /** Failed rows with a task: polled again, resubmitted only if that task failed or is unknown. */
  repolled: number;
  /** Failed rows without a task (they failed at submit): back to the submit stage. */
  requeued: number;
  /** Rows left as they were: a worker still held one of their jobs, or they moved meanwhile. */
  skipped: number;
  /** Rows the reconciler gave a lost job back (or failed, their job given up); only when it ran. */
  repaired?: number;
  /**
   * Queued rows of a batch still `cancel` marked (a retry of one error group that matched no row
   * leaves the mark) that the reconciler's sweep cancelled: no live job behind them; only when it ran.
   */
  cancelled?: number;
}

/** What happened to one failed row. */
type RowOutcome = "repolled" | "requeued" | "skipped";

/**
 * The rows this process is retrying right now. Two retries of one row at once (two clicks, a row
 * and its group) must not interleave: the second would remove the job the first had just added
 * (the ids are the same) and then find the row no longer failed, leaving it `submitted` with no
 * job. The second one skips the row instead.
 */
const retrying = new Set<string>();

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
  const { priority } = await retryable(deps, batch);
  const report: RetryReport = { repolled: 0, requeued: 0, skipped: 0 };
  // A retry puts rows back in the pipeline: a `cancel`'s mark (no resubmits, wakes or feeds) goes,
  // or a retried row over the budget would park with nothing to wake it. A retry of some rows
  // only (the dashboard's error group) lifts it only when a row is retried: one that matches none
  // leaves the cancel as it was.
  let clearing: Promise<unknown> | undefined;
  const clearMark = () => (clearing ??= deps.ledger.markCancelled(batch, false));
  if (!only) await clearMark();
  // The failed rows only, from their index: ten failed rows of a million cost ten reads. A page is
  // finished before the next is read (the walk's rule: rows leave the index as they are retried).
  await deps.ledger.ensureStateIndex(batch);
  for await (const page of deps.ledger.drainState(batch, "failed")) {
    await forEachLimit(iterate(page), CONCURRENCY, async ({ row }) => {
      if (only && !only(row)) return;
      const outcome = await retryOne(deps, row.batch, row.id, priority, row, clearMark);
      if (outcome !== "not-failed") report[outcome]++;
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
    if ((swept.cancelled ?? 0) > 0) {
      report.cancelled = swept.cancelled;
      out.write(
        `batch ${batch}: the batch is still cancelled; ${swept.cancelled} of its queued rows with no live job behind them (waiting for budget or the submit window, or their job lost or given up on) were cancelled, as its cancel would have\n`,
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
 * The batch, unless `purge` marked it: its rows are partly deleted and its counters still count
 * them, so nothing goes back into the pipeline until the purge, run again, has deleted it.
 */
async function retryable(deps: RetryDeps, batch: string): Promise<BatchSummary> {
  const summary = await requireBatch(deps.ledger, batch, deps.queuePrefix);
  if (summary.purging !== undefined) throw batchPurgingError(batch, summary.purging);
  return summary;
}

/**
 * The dashboard's retry of one row: reads that row only (no walk of the failed index, no sweep of
 * the batch); a row that is not failed is left alone (the report counts nothing).
 */
export async function retryRow(deps: RetryDeps, batch: string, rowId: string): Promise<RetryReport> {
  const { priority } = await retryable(deps, batch);
  const report: RetryReport = { repolled: 0, requeued: 0, skipped: 0 };
  // A row that is not failed (a stale page's click) is left alone, and so is the batch's cancel.
  const outcome = await retryOne(deps, batch, rowId, priority, undefined, () =>
    deps.ledger.markCancelled(batch, false),
  );
  if (outcome !== "not-failed") report[outcome]++;
  return report;
}

/**
 * One row back into the pipeline, under this process's claim on it. The row is read again under
 * the claim (`seen`: as a walk read it, maybe before another retry moved it): its jobs are removed
 * only while it is still failed.
 */
async function retryOne(
  deps: RetryDeps,
  batch: string,
  rowId: string,
  /** The batch's submit priority: a requeued row's job takes it, as its first job did. */
  priority: number | undefined,
  seen?: RowRecord,
  /** Runs once the row is found failed, before it moves (the batch's cancel mark lifted). */
  beforeMove?: () => Promise<unknown>,
): Promise<RowOutcome | "not-failed"> {
  const claim = `${deps.queuePrefix ?? ""}\n${batch}\n${rowId}`;
  if (retrying.has(claim)) return "skipped";
  retrying.add(claim);
  try {
    const row = await deps.ledger.getRow(batch, rowId);
    if (row?.status !== "failed") return seen ? "skipped" : "not-failed";
    await beforeMove?.();
    return row.taskIds.length > 0 || row.taskId
      ? await repoll(deps, row)
      : await requeue(deps, row, priority);
  } finally {
    retrying.delete(claim);
  }
}

/** Failed with a task: clear the stale jobs of its ids, move it to submitted, poll its latest task. */
async function repoll(deps: RetryDeps, row: RowRecord): Promise<RowOutcome> {
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
  // A running job would finish (and be removed) after our add, which then found its id taken.
  if (stale.includes("active")) return "skipped";
  const submittedAt = deps.clock.now();
  const moved = await deps.ledger.transition(batch, id, {
    from: ["failed"],
    to: "submitted",
    set: { error: null, submittedAt },
  });
  if (!moved.ok) return "skipped";
  try {
    await deps.queues.addPoll(
      { batch, rowId: id, taskId, resubmit: lineage, submittedAt, checks: 0, resubmitOnFailure: true },
      0,
    );
  } catch (error) {
    await restoreFailed(deps, row, "submitted");
    throw error;
  }
  return "repolled";
}

/** Failed at submit: back to queued with a submit job for the same lineage. */
async function requeue(deps: RetryDeps, row: RowRecord, priority: number | undefined): Promise<RowOutcome> {
  const { batch, id } = row;
  const lineage = row.taskIds.length;
  if ((await removeStageJob(deps.queues, "submit", jobKey(batch, id, lineage))) === "active")
    return "skipped";
  const moved = await deps.ledger.transition(batch, id, {
    from: ["failed"],
    to: "queued",
    set: { error: null },
  });
  if (!moved.ok) return "skipped";
  try {
    // At the batch's priority (BullMQ runs a job without one before every prioritised job).
    await deps.queues.addSubmit({ batch, rowId: id, resubmit: lineage }, { priority });
  } catch (error) {
    await restoreFailed(deps, row, "queued");
    throw error;
  }
  return "requeued";
}

/** The job could not be added: the row goes back to failed, as it was, so a later retry finds it. */
async function restoreFailed(deps: RetryDeps, row: RowRecord, from: "submitted" | "queued"): Promise<void> {
  await deps.ledger
    .transition(row.batch, row.id, { from: [from], to: "failed", set: { error: row.error ?? null } })
    .catch(() => undefined);
}
