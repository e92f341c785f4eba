import type { Ledger } from "../ledger/index.js";
import type { AlertSender } from "./sender.js";

/**
 * The ledger, alerting when a transition finishes its batch (the ledger's script says so to
 * exactly one caller). The batch's counts are read off the stage's path, when the alert is built.
 */
export function alertingLedger(ledger: Ledger, alerts: AlertSender): Ledger {
  return {
    ...ledger,
    async transition(batch, rowId, input) {
      const result = await ledger.transition(batch, rowId, input);
      if (result.finished) alerts.emit(() => batchFinished(ledger, batch));
      return result;
    },
  };
}

/** The event for a finished batch; undefined when it is not finished (any more: a retry reopened it). */
async function batchFinished(ledger: Pick<Ledger, "getBatch">, batch: string) {
  const summary = await ledger.getBatch(batch);
  if (summary?.finishedAt === undefined) return undefined;
  return { event: "batch.finished" as const, summary: { ...summary, finishedAt: summary.finishedAt } };
}
