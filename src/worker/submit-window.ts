import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import type { StageQueues } from "./ports.js";

/**
 * Feed pages per call at most (each passes up to 500 rows): a batch with a long run of rows
 * cancelled while held is walked on by the next trigger or sweep, not inside one row's job.
 */
const MAX_FEED_PAGES = 50;

/** What feeding a batch's submit window needs: the ledger's feed and a submit queue that takes a priority. */
export interface WindowFeedDeps {
  ledger: Pick<Ledger, "feedWindow">;
  /** One bulk add per feed page (a worker feeds inside its submit stage: one round trip, not 250). */
  queues: Pick<StageQueues, "addSubmitBulk">;
}

/**
 * Gives the next held rows of a window-managed batch (queued, no job yet: the submit window,
 * issue 10) their submit jobs, in manifest order, as many as refill the window, at the batch's
 * priority (enqueue --priority), as the producer gives the first window; while rows wait for
 * budget, only the held rows that fit the room left (feed.lua). Job ids come from
 * `jobKey`, so a job added twice is one job; a crash between the feed and an add leaves a queued
 * row below `fedSeq` with no job, which the reconciler repairs. Returns the rows fed.
 */
export async function feedSubmitWindow(deps: WindowFeedDeps, batch: string): Promise<number> {
  let count = 0;
  for (let page = 0; page < MAX_FEED_PAGES; page++) {
    const { fed, priority, more } = await deps.ledger.feedWindow(batch);
    await deps.queues.addSubmitBulk(
      fed.map(({ rowId, resubmit }) => ({ batch, rowId, resubmit })),
      { priority },
    );
    count += fed.length;
    if (!more) break;
  }
  return count;
}

/**
 * The ledger, feeding a batch's submit window after a move out of `queued` that says it is below
 * half full (the transition's `feed`, read in the same atomic step: most moves cost nothing more).
 * A feed that fails is logged, not thrown (the move itself succeeded): the reconciler's sweep
 * feeds a batch whose window is low. Every other method is the ledger's own.
 */
export function feedingLedger<L extends Pick<Ledger, "transition" | "feedWindow">>(
  ledger: L,
  queues: WindowFeedDeps["queues"],
  log: Pick<Logger, "warn">,
): L {
  return {
    ...ledger,
    async transition(batch, rowId, input) {
      const result = await ledger.transition(batch, rowId, input);
      if (result.feed === true) {
        await feedSubmitWindow({ ledger, queues }, batch).catch((err: unknown) => {
          log.warn({ err, batch }, "could not feed the batch's submit window; the reconciler will");
        });
      }
      return result;
    },
  };
}
