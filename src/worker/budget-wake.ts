import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import type { StageQueues } from "./ports.js";
import { feedingLedger } from "./submit-window.js";

/** What waking parked rows needs: the ledger's wake and the submit queue. */
export interface BudgetWakeDeps {
  ledger: Pick<Ledger, "wakeParked">;
  queues: Pick<StageQueues, "addSubmit">;
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
  for (;;) {
    const { woken, more } = await deps.ledger.wakeParked(batch);
    for (const { rowId, resubmit } of woken) await deps.queues.addSubmit({ batch, rowId, resubmit });
    count += woken.length;
    if (!more) return count;
  }
}

/**
 * The ledger, waking parked rows after every call that may give the budget room: a released
 * reservation (a row failed or cancelled without a create) and a settled task (spent below its
 * reservation). The money script itself says whether the batch has parked rows (its ZCARD, in the
 * same atomic step), so a batch with none, nearly every settle, costs no wake and no read. A row
 * parked after that step was checked against the budget this call freed, so skipping the wake
 * strands none. A wake that fails is logged, not thrown (the money call itself succeeded): the
 * reconciler's sweep wakes the rows. Moves out of `queued` also feed the batch's submit window
 * when it runs low (`feedingLedger`). Every other method is the ledger's own.
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
  >,
>(ledger: L, queues: Pick<StageQueues, "addSubmit">, log: Pick<Logger, "warn">): L {
  const wake = async (batch: string) => {
    await wakeParkedRows({ ledger, queues }, batch).catch((err: unknown) => {
      log.warn({ err, batch }, "could not wake rows waiting for budget; the reconciler will");
    });
  };
  return {
    // A move out of `queued` may leave the batch's submit window low: it is fed (submit-window.ts).
    ...feedingLedger(ledger, queues, log),
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
