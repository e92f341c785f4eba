import type { Logger } from "../core/logger.js";
import type { Ledger, WakeCursor } from "../ledger/index.js";
import type { StageQueues } from "./ports.js";
import { feedingLedger, feedSubmitWindow } from "./submit-window.js";

/** What waking parked rows needs: the ledger's wake and the submit queue. */
export interface BudgetWakeDeps {
  ledger: Pick<Ledger, "wakeParked">;
  queues: Pick<StageQueues, "addSubmit">;
}

/** What waking parked rows and then feeding the submit window needs. */
export interface WakeAndFeedDeps {
  ledger: Pick<Ledger, "wakeParked" | "feedWindow">;
  queues: Pick<StageQueues, "addSubmit" | "addSubmitBulk">;
}

/**
 * Gives the batch's parked rows (over its budget, no job, no Redis call while they wait) their
 * submit jobs back, as many as the budget now holds, in manifest order: after a raised or removed
 * budget, a released reservation, a settle below the estimate, and in every reconciler sweep (a
 * safety net for a wake lost to a crash). Each woken row holds its reservation already. Job ids
 * come from `jobKey`, so a job added twice is one job. Returns the rows woken.
 */
export async function wakeParkedRows(deps: BudgetWakeDeps, batch: string): Promise<number> {
  let count = 0;
  let from: WakeCursor | undefined;
  do {
    const { woken, next, priority } = await deps.ledger.wakeParked(batch, from === undefined ? {} : { from });
    // The batch's priority, as its rows' first jobs had (BullMQ runs a job without one first).
    for (const { rowId, resubmit } of woken)
      await deps.queues.addSubmit({ batch, rowId, resubmit }, { priority });
    count += woken.length;
    from = next;
  } while (from !== undefined);
  return count;
}

/**
 * Wakes the parked rows the budget holds now, then feeds the batch's submit window: held rows
 * that fit the room left are fed even when a parked row ahead of them does not fit (feed.lua), so
 * a raise, a release or a settle that wakes nothing still lets cheaper held rows go.
 */
export async function wakeAndFeed(
  deps: WakeAndFeedDeps,
  batch: string,
): Promise<{ woken: number; fed: number }> {
  const woken = await wakeParkedRows(deps, batch);
  return { woken, fed: await feedSubmitWindow(deps, batch) };
}

/**
 * The ledger, waking parked rows after every call that may give the budget room: a released
 * reservation (a row failed or cancelled without a create) and a settled task (spent below its
 * reservation). The money script itself says whether the batch has parked rows (its ZCARD, in the
 * same atomic step), so a batch with none, nearly every settle, costs no wake and no read. A row
 * parked after that step was checked against the budget this call freed, so skipping the wake
 * strands none. A wake that fails is logged, not thrown (the money call itself succeeded): the
 * reconciler's sweep wakes the rows. Each wake also feeds the batch's submit window
 * (`wakeAndFeed`), and so does a row parking (its reservation refused); moves out of `queued`
 * feed it when it runs low (`feedingLedger`). Every other method is the ledger's own.
 */
export function wakingLedger<
  L extends Pick<
    Ledger,
    | "releaseReservation"
    | "settleCredits"
    | "wakeParked"
    | "settleAndPeek"
    | "releaseAndPeek"
    | "transition"
    | "feedWindow"
    | "reserveBudget"
  >,
>(ledger: L, queues: WakeAndFeedDeps["queues"], log: Pick<Logger, "warn">): L {
  const wake = async (batch: string) => {
    await wakeAndFeed({ ledger, queues }, batch).catch((err: unknown) => {
      log.warn({ err, batch }, "could not wake rows waiting for budget; the reconciler will");
    });
  };
  const feeding = feedingLedger(ledger, queues, log);
  return {
    // A move out of `queued` may leave the batch's submit window low: it is fed (submit-window.ts).
    ...feeding,
    // A settle sent with a move (the poll's) frees room as `settleCredits` does.
    async transition(batch, rowId, input) {
      const result = await feeding.transition(batch, rowId, input);
      if (result.settled === "settled" && result.parked === true) await wake(batch);
      return result;
    },
    async reserveBudget(batch, rowId, credits) {
      const outcome = await ledger.reserveBudget(batch, rowId, credits);
      // A row parked leaves the fed rows: held rows that fit the room left take its place (one
      // HMGET when the batch holds none or has no room).
      if (outcome === "over-budget") {
        await feedSubmitWindow({ ledger, queues }, batch).catch((err: unknown) => {
          log.warn({ err, batch }, "could not feed the batch's submit window; the reconciler will");
        });
      }
      return outcome;
    },
    async releaseReservation(batch, rowId) {
      const { released, parked } = await ledger.releaseAndPeek(batch, rowId);
      if (released > 0 && parked) await wake(batch);
      return released;
    },
    async settleCredits(batch, rowId, spent, taskId) {
      const { outcome, parked } = await ledger.settleAndPeek(batch, rowId, spent, taskId);
      if (outcome === "settled" && parked) await wake(batch);
      return outcome;
    },
  };
}
