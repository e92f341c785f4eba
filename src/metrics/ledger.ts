import type { Ledger } from "../ledger/index.js";
import { TERMINAL_STATUSES } from "../ledger/index.js";
import type { WorkerMetrics } from "./registry.js";

/**
 * Ledger with metrics: credits counted when a task's spend is settled (once per task: the
 * ledger answers "already-settled" to a repeat; by `settleCredits` or a transition's `settle`), rows counted as they reach a terminal state,
 * batches as their last row does. Every other method is the ledger's own.
 */
export function instrumentLedger(ledger: Ledger, metrics: WorkerMetrics): Ledger {
  return {
    ...ledger,
    async settleCredits(batch, rowId, spent, taskId) {
      const outcome = await ledger.settleCredits(batch, rowId, spent, taskId);
      if (outcome === "settled" && spent > 0) metrics.creditsSpent.inc(spent);
      return outcome;
    },
    async transition(batch, rowId, input) {
      const result = await ledger.transition(batch, rowId, input);
      const spent = input.settle?.spent ?? 0;
      if (result.settled === "settled" && spent > 0) metrics.creditsSpent.inc(spent);
      if (result.ok && input.to !== undefined && TERMINAL_STATUSES.includes(input.to)) {
        metrics.rowsFinished.inc({ status: input.to });
      }
      if (result.finished) metrics.batchesFinished.inc();
      return result;
    },
  };
}
