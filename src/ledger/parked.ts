import type { LedgerContext } from "./context.js";
import type { WakeResult } from "./script-outcomes.js";
import { wakeScript } from "./scripts/index.js";

/** Parked rows looked at per script call. */
const WAKE_PAGE = 200;

/**
 * Wakes the batch's parked rows that fit its budget now, in manifest order, at most `max` of them
 * (one page per call: the caller adds their jobs, then asks again while `more`). Each woken row
 * holds its reservation already, so its submit job goes straight on. Costs one ZRANGE when
 * nothing is parked.
 */
export async function wakeParked(ctx: LedgerContext, batch: string, max = WAKE_PAGE): Promise<WakeResult> {
  const parkedKey = ctx.keys.parked(batch);
  const ids = await ctx.redis.zrange(parkedKey, 0, Math.max(1, max) - 1);
  if (ids.length === 0) return { woken: [], more: false };
  const keys = [ctx.keys.batch(batch), parkedKey, ...ids.map((id) => ctx.keys.row(batch, id))];
  const reply = (await wakeScript.run(ctx.redis, keys, ids, ctx.clock)) as (string | number)[];
  const woken: WakeResult["woken"] = [];
  for (let i = 1; i + 1 < reply.length; i += 2)
    woken.push({ rowId: String(reply[i]), resubmit: Number(reply[i + 1]) });
  // A full page walked to its end may have more behind it; a row that did not fit (passed over,
  // wake.lua) ends the wake at this page: the rest wait for the next room.
  return { woken, more: reply[0] !== 1 && ids.length === Math.max(1, max) };
}
