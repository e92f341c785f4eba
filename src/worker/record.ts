import type { Logger } from "../core/logger.js";

/** Tries of a ledger write that must not be lost (a taskId just paid for). */
const RECORD_TRIES = 20;

/**
 * Runs a ledger write that records something already paid for (a taskId), retrying while Redis
 * is unreachable. Every failure logs the taskId with batch and row id, so it can be recovered by
 * hand even if the process then dies.
 */
export async function recordWithRetry<T>(
  log: Logger,
  what: { batch: string; rowId: string; taskId: string },
  write: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      log.error({ ...what, attempt, err: error }, "could not record the taskId in Redis; retrying");
      if (attempt >= RECORD_TRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5_000)));
    }
  }
}
