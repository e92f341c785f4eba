import { budgetFits } from "./budget.js";
import { type LedgerContext, orderPage } from "./context.js";
import { type FeedResult, parseRowsReply } from "./script-outcomes.js";
import { feedScript } from "./scripts/index.js";

/** Order-zset rows looked at per script call, at most (a window's worth is asked for). */
const FEED_PAGE = 500;
/** Order-zset rows read per call at least, however few the window asks for. */
const MIN_PAGE = 100;

/**
 * Feeds a window-managed batch's submit window (scripts/feed.lua): the next held rows, in manifest
 * order, as many as bring its fed-and-queued rows back to its window (while rows wait for budget,
 * only those that fit the room left; one that does not even fit the room the call began with is
 * parked, with no job, while the room holds the batch's cheapest row and fewer than two windows'
 * worth, 1,000 at least, wait: feed.lua), at most `max` per call; the caller adds their submit
 * jobs, then asks again while `more`. Costs one HMGET when the batch is not window-managed, holds
 * no row, has its window full, has rows waiting and no room for its cheapest row, or was cancelled.
 */
export async function feedWindow(ctx: LedgerContext, batch: string, max = FEED_PAGE): Promise<FeedResult> {
  const batchKey = ctx.keys.batch(batch);
  const [fedSeq, held, queued, waiting, window, budget, spent, reserved, uncertain, cancelledAt, cheapest] =
    await ctx.redis.hmget(
      batchKey,
      "fedSeq",
      "held",
      "queued",
      "waitingBudget",
      "submitWindow",
      "budget",
      "creditsSpent",
      "creditsReserved",
      "creditsUncertain",
      "cancelledAt",
      "minEstimate",
    );
  const none: FeedResult = { fed: [], more: false };
  if (fedSeq === null || fedSeq === undefined || Number(held) <= 0) return none;
  // A batch `cancel` ran on feeds nothing (feed.lua refuses it too): no page read for it.
  if (cancelledAt !== null && cancelledAt !== undefined) return none;
  const want = Number(window) - (Number(queued) - Number(held) - Number(waiting ?? 0));
  if (!(want > 0)) return none;
  // While rows wait for budget, only rows that fit the room left are fed or parked (feed.lua):
  // none when not even the batch's cheapest row fits. A batch without a budget never waits.
  if (Number(waiting ?? 0) > 0 && !budgetFits({ budget, spent, reserved, uncertain }, Number(cheapest ?? 0)))
    return none;
  // At least a short page: rows passed over (cancelled while held) do not stall the feed.
  const page = await orderPage(ctx, batch, fedSeq, Math.max(1, Math.min(max, Math.max(want, MIN_PAGE))));
  if (page.length === 0) return none;
  const keys = [batchKey, ctx.keys.parked(batch)];
  for (let i = 0; i < page.length; i += 2) keys.push(ctx.keys.row(batch, page[i]!));
  const reply = (await feedScript.run(ctx.redis, keys, page, ctx.clock)) as (string | number)[];
  const { flag: more, priority, rows: fed } = parseRowsReply(reply);
  return { fed, ...(priority === undefined ? {} : { priority }), more };
}
