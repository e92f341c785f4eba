import type { LedgerContext } from "./context.js";
import { forgetReservedEndedScript } from "./scripts/index.js";

/**
 * The batch's reserved-ended set (keys.ts `reservedEnded`): rows that ended (cancelled, failed)
 * holding a credit reservation, or reserved while not queued. Whoever moved such a row gives the
 * reservation back (or keeps it as uncertain) in its next step; a crash or an error before that
 * step would keep it from the budget for good, so the reconciler looks here
 * (`worker/reconcile-money.ts`). Normally empty: each entry is taken out once its row holds nothing.
 */

/** Rows looked at per sweep of one batch, at most (the set is normally empty). */
const SWEEP_MAX = 2_000;

/** Up to `max` of the set's rows (SSCAN: a large set is read a page at a time). */
export async function reservedEnded(ctx: LedgerContext, batch: string, max = SWEEP_MAX): Promise<string[]> {
  const key = ctx.keys.reservedEnded(batch);
  const ids = new Set<string>();
  let cursor = "0";
  do {
    const [next, page] = await ctx.redis.sscan(key, cursor, "COUNT", 500);
    for (const id of page) if (ids.size < max) ids.add(id);
    cursor = next;
  } while (cursor !== "0" && ids.size < max);
  return [...ids];
}

/** Takes out the given rows that hold no reservation now (or are gone); returns how many. */
export async function forgetReservedEnded(
  ctx: LedgerContext,
  batch: string,
  ids: readonly string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  const keys = [ctx.keys.reservedEnded(batch), ...ids.map((id) => ctx.keys.row(batch, id))];
  return Number(await forgetReservedEndedScript.run(ctx.redis, keys, ids, ctx.clock));
}
