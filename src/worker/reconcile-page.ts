import type { Clock } from "../core/clock.js";
import type { Ledger } from "../ledger/index.js";
import type { StateEntry } from "../ledger/read-options.js";
import type { IndexedStatus, RowState } from "../ledger/types.js";
import type { Stage } from "./jobs.js";
import { keepIfCreateOnWire } from "./reconcile-money.js";
import { type ReconcileJobs, requeue, stageKey } from "./reconcile-requeue.js";

/**
 * One page of the reconciler's walk (reconcile.ts): the rows of a state whose job is missing get
 * it back, or are failed when BullMQ gave up on it, or, in a batch `cancel` marked, are cancelled.
 */

/** What a sweep of one batch found and did. */
export interface ReconcileReport {
  batch: string;
  /** Rows looked at (old enough in a state that needs a job). */
  checked: number;
  /** Rows given back their job. */
  requeued: number;
  /** Rows whose job BullMQ had given up on without the row being failed: failed now. */
  failed: number;
  /** Parked rows (over the budget, no job) that fit the budget now: given their job (absent: none). */
  woken?: number;
  /** Held rows of a window-managed batch whose window was low (a feed lost to a crash): fed (absent: none). */
  fed?: number;
  /** Reservations of ended rows that nothing would give back (reconcile-money.ts): given back or kept uncertain (absent: none). */
  reservations?: number;
  /**
   * Queued rows of a batch `cancel` marked that had no live job (parked over the budget, held by
   * the submit window, a job lost or given up on): cancelled here, as the cancel's walk would
   * have (absent: none).
   */
  cancelled?: number;
}

/** What a page needs of the reconciler's ports. */
interface PageDeps {
  ledger: Pick<Ledger, "stillInState" | "transition" | "keepUncertain" | "releaseReservation">;
  jobs: ReconcileJobs;
  clock: Pick<Clock, "now">;
}

/** The page's rows without a live job, still in `state` since read: each given what it needs. */
export async function reconcilePage(
  deps: PageDeps,
  batch: string,
  state: IndexedStatus,
  stage: Stage,
  page: readonly StateEntry<RowState>[],
  report: ReconcileReport,
  priority: number | undefined,
  cancelled: boolean,
): Promise<void> {
  // Queued rows come without the parked ones (skipParked), but for a cancelled batch's (cancelled
  // here). One marked waiting but not parked was marked by an older version: a job makes it park
  // (or go) as this version does.
  const judged = page.filter(({ row }) => state === "queued" || row.taskId !== undefined);
  if (judged.length === 0) return;
  const presence = await deps.jobs.presence(
    stage,
    judged.map(({ row }) => stageKey(stage, row)),
  );
  const suspects = judged.filter((_, i) => presence[i] !== "live");
  if (suspects.length === 0) return;
  // The job may have moved the row on (and been removed) between the index read and the job
  // check: act only on rows still in the state since the same moment.
  const still = await deps.ledger.stillInState(
    batch,
    state,
    suspects.map(({ row, enteredAt }) => ({ id: row.id, enteredAt })),
  );
  // A queued row with a live poll job of the lineage a submit would create lost its task's record
  // in a failover: that poll records it again (worker/poll-record.ts); a submit would pay twice.
  const polled =
    stage === "submit"
      ? await deps.jobs.presence(
          "poll",
          suspects.map(({ row }) => stageKey(stage, row)),
        )
      : [];
  for (const [i, { row }] of suspects.entries()) {
    if (!still[i] || polled[i] === "live") continue;
    const found = presence[judged.indexOf(suspects[i]!)]!;
    // A cancelled batch's queued row: cancelled, as the cancel's walk would have (a `retry` that
    // lifted the mark since leaves it to the next sweep), whether its job is gone or given up on.
    const cancelling = cancelled && stage === "submit";
    if (found === "failed") {
      // The runner's last-resort handler would have failed the row; its write was lost.
      const moved = await deps.ledger.transition(batch, row.id, {
        from: [state],
        ...(cancelling
          ? { to: "cancelled", ifBatchCancelled: true }
          : {
              to: "failed",
              set: { error: `${stage} stage gave up (its job failed; the row was not marked failed then)` },
            }),
        rowOnRefusal: true,
      });
      if (!moved.ok) continue;
      if (cancelling) report.cancelled = (report.cancelled ?? 0) + 1;
      else report.failed += 1;
      // The runner's give-up would have settled the submit's reservation too: back to the budget,
      // or kept as uncertain when the job died with a create on the wire (or its data is gone).
      if (stage === "submit" && !(await keepIfCreateOnWire(deps, batch, row)))
        await deps.ledger.releaseReservation(batch, row.id);
      continue;
    }
    if (found === "completed") await deps.jobs.removeFinished(stage, stageKey(stage, row));
    if (cancelling) {
      if (await cancelJobless(deps, batch, row)) report.cancelled = (report.cancelled ?? 0) + 1;
      continue;
    }
    if (await requeue(deps, stage, row, priority)) report.requeued += 1;
  }
}

/**
 * A queued row without a job in a batch `cancel` marked: cancelled while the mark is on (a
 * `retry` that lifted it leaves the row to the next sweep, which gives it what it needs then), its
 * reservation given back (a row parked or held holds none; a lost job's may). False when refused.
 */
async function cancelJobless(deps: PageDeps, batch: string, row: RowState): Promise<boolean> {
  const moved = await deps.ledger.transition(batch, row.id, {
    from: ["queued"],
    to: "cancelled",
    ifBatchCancelled: true,
    rowOnRefusal: true,
  });
  if (!moved.ok) return false;
  // What it held when read: nothing reserves for a jobless row meanwhile (wake.lua refuses a
  // cancelled batch), and giving back a row that holds nothing costs a round trip for naught.
  if (row.creditsReserved > 0) await deps.ledger.releaseReservation(batch, row.id);
  return true;
}
