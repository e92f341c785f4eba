import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import type { IndexedStatus } from "../ledger/types.js";
import { wakeParkedRows } from "./budget-wake.js";
import type { Stage } from "./jobs.js";
import { type MoneyRepairDeps, repairEndedReservations } from "./reconcile-money.js";
import { type ReconcileReport, reconcilePage } from "./reconcile-page.js";
import type { ReconcileJobs } from "./reconcile-requeue.js";
import { feedSubmitWindow } from "./submit-window.js";

/**
 * The reconciler: finds rows whose state has no job behind it and gives them one back.
 *
 * A worker that dies between a row's state change and the add of the next stage's job (a poll
 * run that moved its row to `archiving`, a failed generation moved back to `queued`) leaves a row
 * that nothing will ever move: invariant 1 (every row ends) needs someone to look. This walks the
 * ledger's state indexes (the rows in a state, not the batch), checks the jobs of a page at once,
 * and adds what is missing under the one job id `jobKey` gives, so running it twice, or on two
 * workers at once, adds nothing twice. No BullMQ here: the queues come as `ReconcileJobs`.
 */

/** A row that entered its state less than this long ago is left alone: its job may be on its way. */
export const RECONCILE_SETTLE_MS = 60_000;

type ReconcileLedger = Pick<
  Ledger,
  | "getBatch"
  | "listBatches"
  | "ensureStateIndex"
  | "stateOnlyPages"
  | "drainStateOnly"
  | "stillInState"
  | "countRepairs"
  | "transition"
  | "wakeParked"
  | "feedWindow"
  | "keepUncertain"
  | "releaseReservation"
  | "reservedEnded"
  | "forgetReservedEnded"
  | "getRowState"
  | "releaseEnded"
>;

export interface ReconcileDeps extends Pick<MoneyRepairDeps, "moneyCursors" | "moneySweepMax"> {
  ledger: ReconcileLedger;
  jobs: ReconcileJobs;
  clock: Pick<Clock, "now">;
  log: Logger;
  /** @defaultValue RECONCILE_SETTLE_MS */
  settleMs?: number;
  /** Rows per page. @defaultValue 500 */
  pageSize?: number;
}

export type { ReconcileReport } from "./reconcile-page.js";

/** The states a row waits in for a job, and which stage's job that is. */
const WATCHED: readonly { state: IndexedStatus; stage: Stage }[] = [
  { state: "queued", stage: "submit" },
  { state: "submitted", stage: "poll" },
  { state: "generating", stage: "poll" },
  { state: "archiving", stage: "archive" },
];

/** Asked between batches and pages: false stops the sweep there (the lease lost, the worker closing). */
export type KeepGoing = () => Promise<boolean>;

/**
 * Every unfinished batch; `keepGoing` is asked before each and between pages. A batch whose sweep
 * throws is logged and passed over: one bad batch must not leave every other batch unswept.
 */
export async function reconcileAll(
  deps: ReconcileDeps,
  keepGoing: KeepGoing = async () => true,
): Promise<ReconcileReport[]> {
  const reports: ReconcileReport[] = [];
  for (const summary of await deps.ledger.listBatches()) {
    if (!(await keepGoing())) break;
    if (summary.finishedAt !== undefined) {
      // Every row ended: nothing to requeue, but a reservation a crash left on an ended row
      // would show as reserved for good (and hold back rows appended or retried later).
      await repairMoney(deps, summary.batch).catch((error: unknown) => {
        deps.log.warn(
          { err: error, batch: summary.batch },
          `reconciler: the money repair of batch ${summary.batch} failed`,
        );
      });
      continue;
    }
    try {
      reports.push(await reconcileBatch(deps, summary.batch, keepGoing));
    } catch (error) {
      deps.log.warn(
        { err: error, batch: summary.batch },
        `reconciler: the sweep of batch ${summary.batch} failed; the other batches are still swept`,
      );
    }
  }
  return reports;
}

/** A purge's mark older than this is reported at warn (a purge running that long was cut short, most likely). */
const PURGE_CUT_SHORT_MS = 3_600_000;

/** One batch: each watched state that holds rows, page by page, while `keepGoing` says so. */
export async function reconcileBatch(
  deps: ReconcileDeps,
  batch: string,
  keepGoing: KeepGoing = async () => true,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { batch, checked: 0, requeued: 0, failed: 0 };
  const summary = await deps.ledger.getBatch(batch);
  if (!summary) return report;
  // A batch `purge` marked: its rows' jobs would end at once (reserve.lua answers `purging`), so
  // giving a cut-short purge's million queued rows their jobs back each sweep is churn, not repair.
  if (summary.purging !== undefined) {
    // At warn once the mark is an hour old: a purge that long was most likely cut short.
    const stale = deps.clock.now() - summary.purging > PURGE_CUT_SHORT_MS;
    (stale ? deps.log.warn : deps.log.info).call(
      deps.log,
      { batch },
      `reconciler: batch ${batch} is being purged (a purge runs now, or was cut short: \`kie-batch purge ${batch} --yes\` finishes it); not swept`,
    );
    return report;
  }
  // Reservations ended rows kept for good go back first, so the wake below uses the room.
  const money = await repairMoney(deps, batch);
  if (money > 0) report.reservations = money;
  // A wake lost to a crash (or a budget raised without one) leaves parked rows that fit now.
  if (summary.waitingBudget > 0) {
    const woken = await wakeParkedRows({ ledger: deps.ledger, queues: deps.jobs }, batch);
    if (woken > 0) {
      report.woken = woken;
      deps.log.info({ batch, woken }, `reconciler: ${woken} rows waiting for budget fit it now; woken`);
    }
  }
  // A feed lost to a crash (a producer gone after recording its rows, a worker after a move out
  // of queued) leaves a window-managed batch's window low with rows held: fed here.
  if ((summary.held ?? 0) > 0) {
    const fed = await feedSubmitWindow({ ledger: deps.ledger, queues: deps.jobs }, batch);
    if (fed > 0) {
      report.fed = fed;
      deps.log.info(
        { batch, fed },
        `reconciler: the submit window of batch ${batch} was low; ${fed} rows fed`,
      );
    }
  }
  await deps.ledger.ensureStateIndex(batch);
  // A batch `cancel` marked: its parked and held rows are never woken or fed (wake.lua, feed.lua
  // refuse it), so a cancel cut short before its walk reached them would leave them queued for
  // good. The walk cancels every queued row without a job, as the cancel's would have, each move
  // made only while the mark is on (a `retry` meanwhile leaves the rest to go on), no job added.
  const cancelled = summary.cancelledAt !== undefined;
  const enteredBefore = deps.clock.now() - (deps.settleMs ?? RECONCILE_SETTLE_MS);
  // A batch of a million rows is two thousand pages: a worker closing (or the lease lost) stops
  // between two of them, and what was repaired so far is still counted below.
  walk: for (const { state, stage } of WATCHED) {
    if (summary[state] === 0) continue;
    // Parked rows (queued over the budget) and held rows (queued above the submit window's
    // `fedSeq`) wait with no job on purpose: left out unread, so a batch of a million of them
    // costs a sweep a ZMSCORE or two per page, not a million reads; a held row never gets a job here.
    const pageSize = deps.pageSize ?? 500;
    // A cancelled batch's queued rows leave the index as the walk goes: the draining walk, which
    // neither skips a row behind one removed nor takes one twice (state-walk.ts).
    const pages =
      cancelled && state === "queued"
        ? deps.ledger.drainStateOnly(batch, state, { enteredBefore, pageSize })
        : deps.ledger.stateOnlyPages(batch, state, {
            enteredBefore,
            pageSize,
            skipParked: state === "queued",
            // Only a window-managed batch holds rows back: the others' walks read no `fedSeq`.
            skipHeld: state === "queued" && summary.fedSeq !== undefined,
          });
    for await (const page of pages) {
      report.checked += page.length;
      await reconcilePage(deps, batch, state, stage, page, report, summary.priority, cancelled);
      if (!(await keepGoing())) break walk;
    }
  }
  if (report.cancelled !== undefined) {
    deps.log.info(
      { batch, cancelled: report.cancelled },
      `reconciler: batch ${batch} was cancelled; ${report.cancelled} of its queued rows had no live job (waiting for budget or the submit window when its cancel stopped, or their job given up on): cancelled`,
    );
  }
  const repaired = report.requeued + report.failed;
  if (repaired > 0) {
    await deps.ledger.countRepairs(batch, repaired);
    deps.log.warn(
      { batch, requeued: report.requeued, failed: report.failed },
      `reconciler: ${repaired} rows of batch ${batch} had no job behind their state; repaired`,
    );
  }
  return report;
}

/**
 * The repair of ended rows' reservations (reconcile-money.ts): how many were repaired. A failure
 * is logged and passed over: the walk that gives rows their jobs back must still run.
 */
async function repairMoney(deps: ReconcileDeps, batch: string): Promise<number> {
  const endedBefore = deps.clock.now() - (deps.settleMs ?? RECONCILE_SETTLE_MS);
  try {
    const repair = await repairEndedReservations(deps, batch, endedBefore);
    return repair.released + repair.uncertain;
  } catch (error) {
    deps.log.warn(
      { err: error, batch },
      `reconciler: the reservations of ended rows of batch ${batch} could not be checked`,
    );
    return 0;
  }
}
