import type { LedgerContext } from "./context.js";
import { markCancelledScript } from "./scripts/index.js";

/**
 * Marks a batch cancelled (`cancelledAt`), or clears the mark (a `retry` puts rows back in the
 * pipeline): a row of a cancelled batch whose generation fails is not resubmitted (worker/poll.ts).
 * False when the batch does not exist.
 */
export async function markCancelled(ctx: LedgerContext, batch: string, cancelled: boolean): Promise<boolean> {
  const reply = await markCancelledScript.run(
    ctx.redis,
    [ctx.keys.batch(batch)],
    [cancelled ? "1" : ""],
    ctx.clock,
  );
  return reply === 1;
}
