import { randomBytes } from "node:crypto";
import type { LedgerContext } from "./context.js";
import { parseRowsReply, type WakeCursor, type WakeResult } from "./script-outcomes.js";
import { wakeScript } from "./scripts/index.js";

/** Parked rows looked at per script call. */
const WAKE_PAGE = 200;

/**
 * Wakes the batch's parked rows that fit its budget now, in manifest order: one page of at most
 * `max` rows per call, from the set's start or after `from`; the caller adds the woken rows' jobs,
 * then asks again from `next` while there is one. A page of rows that did not fit is passed, not
 * waited behind: the walk goes on while the room may hold a parked row (wake.lua's bound on their
 * cost), and ends when it cannot or the set ends. Each woken row holds its reservation already,
 * so its submit job goes straight on. Costs one ZRANGEBYSCORE when nothing is parked.
 */
export async function wakeParked(
  ctx: LedgerContext,
  batch: string,
  page: { from?: WakeCursor; max?: number } = {},
): Promise<WakeResult> {
  const max = Math.max(1, page.max ?? WAKE_PAGE);
  const parkedKey = ctx.keys.parked(batch);
  const after = page.from === undefined ? "-inf" : `(${page.from.afterSeq}`;
  // One more than the page: whether the set goes on past it.
  const read = await ctx.redis.zrangebyscore(parkedKey, after, "+inf", "WITHSCORES", "LIMIT", 0, max + 1);
  const ids: string[] = [];
  for (let i = 0; i < read.length && ids.length < max; i += 2) ids.push(read[i]!);
  if (ids.length === 0) return { woken: [] };
  const lastSeq = read[2 * ids.length - 1]!;
  const last = read.length <= 2 * max;
  const walk = page.from?.walk ?? randomBytes(6).toString("base64url");
  const keys = [ctx.keys.batch(batch), parkedKey, ...ids.map((id) => ctx.keys.row(batch, id))];
  const args = [walk, page.from === undefined ? "1" : "", last ? "1" : "", lastSeq, ...ids];
  const reply = (await wakeScript.run(ctx.redis, keys, args, ctx.clock)) as (string | number)[];
  const { flag: stop, priority, rows: woken } = parseRowsReply(reply);
  const result: WakeResult = { woken, ...(priority === undefined ? {} : { priority }) };
  return stop ? result : { ...result, next: { afterSeq: Number(lastSeq), walk } };
}
