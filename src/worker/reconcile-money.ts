import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import type { RowState } from "../ledger/types.js";
import { jobKey } from "./jobs.js";
import type { ReconcileJobs } from "./reconcile-requeue.js";

/**
 * The reconciler's money repair: a reservation held by a row that has ended.
 *
 * A row that ends (cancelled, failed) holding its reservation has it given back, or kept as
 * uncertain, by whoever moved it, in the next step: `cancel` after removing the row's job, the
 * runner's give-up after its move to failed, a parked submit job's end after BullMQ removed it.
 * A crash or an error between the two steps kept those credits from the budget for good (rows
 * over the budget then waited for room that never came). `transition.lua` notes each such row in
 * the batch's reserved-ended set; here every noted row that still holds a reservation, ended
 * longer ago than the reconciler's settle time, with no live submit job (a running job gives it
 * back itself), has it given back, or kept as uncertain when its job failed with a create on the
 * wire (KIE may have charged it). Rows that hold nothing any more leave the set. The parked rows
 * the credits make room for are woken by the sweep's wake, which runs after this (reconcile.ts).
 */

type MoneyLedger = Pick<
  Ledger,
  "reservedEnded" | "forgetReservedEnded" | "getRowState" | "releaseEnded" | "keepUncertain"
>;

export interface MoneyRepairDeps {
  ledger: MoneyLedger;
  jobs: ReconcileJobs;
  clock: Pick<Clock, "now">;
  log: Logger;
  /**
   * Where each batch's next look at its reserved-ended set starts (the reconciler keeps one map
   * for its life): a set longer than one look, of rows that must stay, is read a slice per sweep,
   * so every row in it is reached. Absent: every look starts at the set's start.
   */
  moneyCursors?: Map<string, string>;
  /** Rows looked at per batch and sweep, about. @defaultValue 2,000 */
  moneySweepMax?: number;
}

export interface MoneyRepair {
  /** Reservations given back to the budget, and their credits. */
  released: number;
  credits: number;
  /** Reservations kept as uncertain (the row's failed job had a create on the wire). */
  uncertain: number;
}

const ENDED = new Set(["cancelled", "failed"]);

/** One batch's repair; `endedBefore`: rows updated since are left to their own next step. */
export async function repairEndedReservations(
  deps: MoneyRepairDeps,
  batch: string,
  endedBefore: number,
): Promise<MoneyRepair> {
  const repair: MoneyRepair = { released: 0, credits: 0, uncertain: 0 };
  const slice = await deps.ledger.reservedEnded(batch, deps.moneyCursors?.get(batch), deps.moneySweepMax);
  if (slice.cursor === "0") deps.moneyCursors?.delete(batch);
  else deps.moneyCursors?.set(batch, slice.cursor);
  const ids = slice.ids;
  if (ids.length === 0) return repair;
  const rows = await Promise.all(ids.map((id) => deps.ledger.getRowState(batch, id)));
  const due = rows.filter(
    (row): row is RowState =>
      row !== undefined && ENDED.has(row.status) && row.creditsReserved > 0 && row.updatedAt < endedBefore,
  );
  const keys = due.map((row) => jobKey(batch, row.id, row.taskIds.length));
  const presence = due.length > 0 ? await deps.jobs.presence("submit", keys) : [];
  for (const [i, row] of due.entries()) {
    const found = presence[i];
    // A job that will still run gives the reservation back (or keeps it) itself.
    if (found === "live") continue;
    if (found === "failed" && (await keepIfCreateOnWire(deps, batch, row))) {
      repair.uncertain += 1;
      continue;
    }
    const released = await deps.ledger.releaseEnded(batch, row.id);
    if (released.released > 0) {
      repair.released += 1;
      repair.credits += released.released;
    }
  }
  await deps.ledger.forgetReservedEnded(batch, ids);
  if (repair.released + repair.uncertain > 0) {
    deps.log.warn(
      { batch, ...repair },
      `reconciler: ${repair.released + repair.uncertain} rows of batch ${batch} ended holding a credit reservation nothing would give back: ${repair.released} given back to the budget (${repair.credits} credits), ${repair.uncertain} kept as uncertain (a create was on the wire)`,
    );
  }
  return repair;
}

/**
 * A row whose submit job BullMQ gave up on: its reservation kept as uncertain when the job died
 * with a create on the wire, or its data cannot be read (`keepFailedUncertain`); true then, false
 * when the caller gives the reservation back.
 */
export async function keepIfCreateOnWire(
  deps: { ledger: Pick<Ledger, "keepUncertain">; jobs: Pick<ReconcileJobs, "failedJobData"> },
  batch: string,
  row: Pick<RowState, "id" | "taskIds">,
): Promise<boolean> {
  const key = jobKey(batch, row.id, row.taskIds.length);
  const data = await deps.jobs.failedJobData("submit", key).catch(() => undefined);
  if (data !== undefined && data.creating === undefined) return false;
  await keepFailedUncertain(deps.ledger, batch, row, data);
  return true;
}

/**
 * A submit job BullMQ gave up on died with a create on the wire (`data.creating`), or its data is
 * gone: the row's reservation is kept as uncertain, counted once per attempt (the row's lineage,
 * whose job it was, and the job's mark), as the job's own next run would have.
 */
async function keepFailedUncertain(
  ledger: Pick<Ledger, "keepUncertain">,
  batch: string,
  row: Pick<RowState, "id" | "taskIds">,
  data: Record<string, unknown> | undefined,
): Promise<void> {
  const attempt =
    data?.creating === undefined ? undefined : { lineage: row.taskIds.length, mark: Number(data.creating) };
  await ledger.keepUncertain(batch, row.id, 0, undefined, attempt);
}
