import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";

/** Steps between two progress lines in the log (500 rows a step: 50,000 rows). */
const LOG_EVERY_STEPS = 100;

export interface HousekeepDeps {
  ledger: Pick<Ledger, "listBatches" | "housekeep">;
  log: Logger;
}

/**
 * The per-batch housekeeping left over by the transitions that finished or reopened a batch
 * (they take one page; a batch of a million rows needs two thousand): every batch with a walk
 * pending is stepped on to the end, its progress kept in its hash after every page, so a sweep cut
 * short (the worker stopped, the lease lost) is resumed by the next one, on any worker.
 * `keepGoing` (the caller's lease) is asked between pages. True when every batch's walk is done.
 */
export async function housekeepAll(
  deps: HousekeepDeps,
  keepGoing: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  for (const { batch, total } of await deps.ledger.listBatches()) {
    let steps = 0;
    const progress = await deps.ledger.housekeep(batch, {
      keepGoing,
      onStep: (step) => {
        steps++;
        if (steps % LOG_EVERY_STEPS === 0) {
          deps.log.info(
            { batch, mode: step.mode, done: step.done, total },
            `housekeeping: batch ${batch}: ${step.mode === "expire" ? "expiry set on" : "expiry removed from"} ${step.done} of ${total} rows`,
          );
        }
      },
    });
    // One step that found nothing to do is the usual case: say nothing.
    if (steps > 1 && progress.complete) {
      deps.log.info(
        { batch, mode: progress.mode, done: progress.done, total },
        `housekeeping: batch ${batch}: ${progress.mode === "expire" ? "expiry set on" : "expiry removed from"} all ${progress.done} rows`,
      );
    }
    if (!progress.complete) return false;
  }
  return true;
}
