import type { Ledger } from "../ledger/index.js";
import { requireBatch } from "../report/batch.js";
import type { OpsLedger, OpsQueues, Output } from "../report/types.js";
import { jobKey } from "../worker/jobs.js";
import { forEachLimit, iterate, removeSubmitJob } from "./jobs.js";

const CONCURRENCY = 16;

export interface CancelDeps {
  ledger: Pick<
    OpsLedger,
    "getBatch" | "listBatches" | "transition" | "releaseReservation" | "keepUncertain"
  > &
    Pick<Ledger, "markCancelled" | "getRowState"> &
    Pick<Ledger, "ensureStateIndex" | "drainState">;
  queues: OpsQueues;
  out: Output;
  queuePrefix?: string;
  /**
   * Frees the in-flight slots (KIE_MAX_IN_FLIGHT) of the removed jobs that had no create on the
   * wire. A removed job holds one only when its worker's lock lapsed mid-submit (a running job
   * cannot be removed): that run can no longer mark or create (its job is gone), and nothing else
   * would free the slot before it went stale an hour later. Absent: left to go stale.
   */
  inFlight?: { release(jobKeys: readonly string[]): Promise<number> };
  /**
   * Whether a worker holds a submit job's lock now (a running job): a removed job's create on the
   * wire is then counted before the removal only when no worker runs it. Absent: after it.
   */
  submitJobLocked?: (jobKey: string) => Promise<boolean>;
}

export interface CancelReport {
  /** Rows that were queued (never submitted) and are now cancelled. */
  cancelled: number;
  /** Their submit jobs removed from the queue. */
  jobsRemoved: number;
  /**
   * Submit jobs a worker was running: left alone. The submit stage re-checks the row, and a create
   * already on the wire is paid for, so that row goes on.
   */
  jobsActive: number;
  /** Rows already submitted: still polled and archived, since they are paid for. */
  inFlight: number;
  /**
   * Cancelled rows whose removed job had a create on the wire when its worker stopped: KIE may
   * have made (and charged) the task, so the reservation is kept as uncertain, not given back.
   */
  uncertain: number;
  /** In-flight slots freed: held by removed jobs whose worker's lock had lapsed. */
  inFlightReleased: number;
}

/**
 * `kie-batch cancel`: every queued row of the batch becomes cancelled and its submit job is
 * removed, best effort. Rows already submitted go on. A queued row's credit reservation is
 * released when its job is gone; a running job settles or releases it itself.
 */
export async function cancelBatch(deps: CancelDeps, batch: string): Promise<CancelReport> {
  const before = await requireBatch(deps.ledger, batch, deps.queuePrefix);
  const report: CancelReport = {
    cancelled: 0,
    jobsRemoved: 0,
    jobsActive: 0,
    inFlight: 0,
    uncertain: 0,
    inFlightReleased: 0,
  };
  // First the mark: a row in flight whose generation fails from now on is not resubmitted (a new
  // create, paid) but fails; `retry` clears it.
  await deps.ledger.markCancelled(batch, true);
  // Only the queued rows, from their index (the one state cancel moves rows out of): a batch of a
  // million mostly finished rows costs what is still queued. A page is finished before the next is
  // read, as the walk asks (the rows leave the index as they are cancelled).
  await deps.ledger.ensureStateIndex(batch);
  for await (const page of deps.ledger.drainState(batch, "queued")) {
    /** The page's removed jobs with no create on the wire: any in-flight slot they hold is freed. */
    const unmarked: string[] = [];
    await forEachLimit(iterate(page), CONCURRENCY, async ({ row }) => {
      // The ledger first: a submit job starting from now on finds the row cancelled.
      const moved = await deps.ledger.transition(batch, row.id, { from: ["queued"], to: "cancelled" });
      if (!moved.ok) return;
      report.cancelled++;
      const key = jobKey(batch, row.id, row.taskIds.length);
      // A job whose worker died with a create on the wire: the attempt may be charged. Counted as
      // the submit stage would have on the job's next run (which the removal takes away), before
      // the removal (removeSubmitJob): a cancel stopped between the two leaves the count made, not
      // a job-less row whose reservation the reconciler would give back as if nothing had been
      // sent. A job a live worker holds (its create on the wire now) is that worker's to count.
      const { outcome: removed, createOnWire } = await removeSubmitJob(
        deps.queues,
        key,
        async (creating) => {
          // The mark was read before: a worker may have finished the create since and recorded its
          // task (whose reservation that task settles): the script counts nothing then (its
          // lineage), nor an attempt its job's next run counted already (its mark). The read
          // only keeps the report's count.
          const now = await deps.ledger.getRowState(batch, row.id);
          const attempt = { lineage: row.taskIds.length, mark: creating };
          await deps.ledger.keepUncertain(batch, row.id, 0, undefined, attempt);
          if (now?.status === "cancelled" && now.taskIds.length === row.taskIds.length) report.uncertain++;
        },
        deps.submitJobLocked,
      );
      if (removed === "removed") report.jobsRemoved++;
      if (removed === "removed" && !createOnWire) unmarked.push(key);
      if (removed === "active") {
        report.jobsActive++;
        return;
      }
      if (createOnWire) return;
      // Given back here; should this step not happen (a cancel stopped, a Redis error), the row
      // is in the batch's reserved-ended set and the reconciler gives it back (reconcile-money.ts).
      if ((moved.row?.creditsReserved ?? 0) > 0) await deps.ledger.releaseReservation(batch, row.id);
    });
    if (deps.inFlight && unmarked.length > 0)
      report.inFlightReleased += await deps.inFlight.release(unmarked);
  }
  const after = await requireBatch(deps.ledger, batch, deps.queuePrefix);
  report.inFlight = after.submitted + after.generating + after.archiving;
  // Submit jobs running meanwhile cancel rows of a marked batch themselves (reserve.lua answers
  // `cancelled`), ahead of the walk: the batch's count says how many went, whoever moved them.
  report.cancelled = Math.max(report.cancelled, after.cancelled - before.cancelled);
  const { out } = deps;
  out.write(
    `batch ${batch}: ${report.cancelled} queued rows cancelled, ${report.jobsRemoved} submit jobs removed\n`,
  );
  if (report.uncertain > 0) {
    out.write(
      `batch ${batch}: ${report.uncertain} cancelled rows had a create on the wire when their worker stopped: KIE may have made and charged those tasks, so their credits are counted as uncertain\n`,
    );
  }
  if (report.inFlightReleased > 0) {
    out.write(
      `batch ${batch}: ${report.inFlightReleased} in-flight slots (KIE_MAX_IN_FLIGHT) held by removed jobs freed\n`,
    );
  }
  if (report.jobsActive > 0) {
    out.write(
      `batch ${batch}: ${report.jobsActive} submit jobs were running: a row whose create request was already sent is paid for and goes on\n`,
    );
  }
  out.write(
    `batch ${batch}: ${report.inFlight} rows already submitted are still polled and archived (they are paid for); ${after.archived} archived, ${after.failed} failed, ${after.cancelled} cancelled in all\n`,
  );
  return report;
}
