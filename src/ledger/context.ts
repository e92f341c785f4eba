import type { RedisClient, ScriptClock } from "../redis/script.js";
import type { LedgerKeys } from "./keys.js";

/** What every ledger operation needs; built once by `createLedger`. */
export interface LedgerContext {
  readonly redis: RedisClient;
  readonly keys: LedgerKeys;
  /** "Now" of every script; undefined for Redis TIME (one clock for the whole fleet). */
  readonly clock: ScriptClock | undefined;
  /** TTL of a finished batch's ledger, from `finishedAt`; undefined keeps it forever. */
  readonly ttlMs: number | undefined;
}

/**
 * Visits a batch's row ids in seq order, one page at a time, by seq cursor rather than by index,
 * so rows appended or deleted during the walk neither repeat nor shift the pages.
 */
export async function* rowIdPages(
  ctx: LedgerContext,
  batch: string,
  pageSize: number,
): AsyncGenerator<string[]> {
  const orderKey = ctx.keys.order(batch);
  let min = "-inf";
  for (;;) {
    const page = await ctx.redis.zrange(orderKey, min, "+inf", "BYSCORE", "LIMIT", 0, pageSize, "WITHSCORES");
    if (page.length === 0) return;
    const ids: string[] = [];
    for (let i = 0; i < page.length; i += 2) ids.push(page[i]!);
    yield ids;
    if (ids.length < pageSize) return;
    min = `(${page[page.length - 1]}`;
  }
}
