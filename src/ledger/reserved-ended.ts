import type { LedgerContext } from "./context.js";
import { forgetReservedEndedScript } from "./scripts/index.js";

/**
 * The batch's reserved-ended set (keys.ts `reservedEnded`): rows that ended (cancelled, failed)
 * holding a credit reservation, or reserved while not queued. Whoever moved such a row gives the
 * reservation back (or keeps it as uncertain) in its next step; a crash or an error before that
 * step would keep it from the budget for good, so the reconciler looks here
 * (`worker/reconcile-money.ts`). Normally empty: each entry is taken out once its row holds nothing.
 */

/** Rows looked at per sweep of one batch, about (the set is normally empty). */
const SWEEP_MAX = 2_000;

/** A slice of the set, and where the next one starts (`"0"`: the slice reached the set's end). */
export interface ReservedEndedSlice {
  ids: string[];
  cursor: string;
}

/**
 * The set's rows from `cursor` on (SSCAN, a page at a time), about `max` of them: whole pages, so
 * the next slice, from the cursor returned, misses none. A set longer than `max` of rows that must
 * stay (a task unsettled, a job still live) is read a slice per sweep, so a row noted behind them
 * is still reached: a read from the start each time would see the same slice for good.
 */
export async function reservedEnded(
  ctx: LedgerContext,
  batch: string,
  cursor = "0",
  max = SWEEP_MAX,
): Promise<ReservedEndedSlice> {
  const key = ctx.keys.reservedEnded(batch);
  const ids = new Set<string>();
  let next = cursor;
  do {
    const [after, page] = await ctx.redis.sscan(key, next, "COUNT", Math.min(500, max));
    for (const id of page) ids.add(id);
    next = after;
  } while (next !== "0" && ids.size < max);
  return { ids: [...ids], cursor: next };
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
