import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";
import { markBatchScript } from "./scripts/index.js";

/**
 * Marks a batch cancelled (`cancelledAt`), or clears the mark (a `retry` puts rows back in the
 * pipeline): a row of a cancelled batch whose generation fails is not resubmitted (worker/poll.ts).
 * False when the batch does not exist.
 */
export async function markCancelled(ctx: LedgerContext, batch: string, cancelled: boolean): Promise<boolean> {
  const reply = await markBatchScript.run(
    ctx.redis,
    [ctx.keys.batch(batch)],
    [cancelled ? "1" : "", "cancelledAt"],
    ctx.clock,
  );
  return reply === 1;
}

/**
 * Marks a batch as being purged (`purging`): reserve.lua reserves nothing for its rows from now on,
 * so no row is created (and paid for) while `purge` deletes them a page at a time.
 */
export async function markPurging(ctx: LedgerContext, batch: string): Promise<void> {
  await markBatchScript.run(ctx.redis, [ctx.keys.batch(batch)], ["1", "purging"], ctx.clock);
}

/** Which of `cancel`'s and `purge`'s marks the batch carries (one HMGET of its hash). */
export async function batchMarks(
  ctx: LedgerContext,
  batch: string,
): Promise<{ cancelled: boolean; purging: boolean }> {
  const [cancelledAt, purging] = await ctx.redis.hmget(ctx.keys.batch(batch), "cancelledAt", "purging");
  return { cancelled: cancelledAt !== null, purging: purging !== null };
}

/**
 * What an enqueue or a retry meets in a batch `purge` has marked: its rows are partly deleted and
 * its counters still count them, so nothing is added or put back until the purge is finished.
 */
export function batchPurgingError(batch: string, since?: number): LedgerError {
  const when = since === undefined ? "" : ` (marked ${new Date(since).toISOString()})`;
  return new LedgerError(
    "batch_purging",
    `batch ${batch} is being purged${when}, its rows partly deleted: wait for the purge running now, or, if none is (one was cut short), run \`kie-batch purge ${batch} --yes\` to finish it; then enqueue to it anew`,
  );
}

/** What an enqueue's later chunk meets when its batch was deleted (purged) after the first. */
export function batchGoneError(batch: string): LedgerError {
  return new LedgerError(
    "batch_gone",
    `batch ${batch} was deleted (purged) while this enqueue added rows to it: nothing more is added (any this run added before go with the purge). Once the purge is done, enqueue the file again to make the batch anew`,
  );
}
