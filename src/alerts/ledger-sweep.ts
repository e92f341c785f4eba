import type { BatchSummary, Ledger } from "../ledger/index.js";
import { FILE_LIFETIME_MS, URL_RISK_AGE_MS } from "../report/status.js";
import type { AlertEvent } from "./events.js";

/** An image older than this and not archived may have lost its URL (as `status` warns: a day). */
export const UNARCHIVED_ALERT_AGE_MS = URL_RISK_AGE_MS;

export interface SweepOptions {
  /** @defaultValue UNARCHIVED_ALERT_AGE_MS (24 h) */
  unarchivedAfterMs?: number;
  /**
   * Batches finished this recently are told again (deduplicated by the claim): catches a batch
   * finished by `kie-batch cancel`, or by a worker that died before its alert went out.
   */
  recentFinishMs: number;
  now: number;
}

/**
 * One pass over the deployment's batches: an alert for each batch whose oldest image waiting for
 * its archive is older than a day, and for each batch that finished recently.
 */
export async function sweepLedger(
  ledger: Pick<Ledger, "listBatches" | "oldestUnarchived">,
  options: SweepOptions,
): Promise<AlertEvent[]> {
  const events: AlertEvent[] = [];
  const lateAfter = options.unarchivedAfterMs ?? UNARCHIVED_ALERT_AGE_MS;
  const batches: BatchSummary[] = await ledger.listBatches();
  for (const summary of batches) {
    if (summary.finishedAt !== undefined && options.now - summary.finishedAt <= options.recentFinishMs) {
      events.push({ event: "batch.finished", summary: { ...summary, finishedAt: summary.finishedAt } });
    }
    if (summary.archiving === 0) continue;
    const oldest = await ledger.oldestUnarchived(summary.batch);
    if (!oldest || options.now - oldest.completedAt <= lateAfter) continue;
    events.push({
      event: "image.unarchived_24h",
      batch: summary.batch,
      rowId: oldest.rowId,
      completedAt: oldest.completedAt,
      archiving: summary.archiving,
      now: options.now,
      expiresAt: oldest.completedAt + FILE_LIFETIME_MS,
    });
  }
  return events;
}
