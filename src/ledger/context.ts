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
  let min = "-inf";
  for (;;) {
    const page = await orderPage(ctx, batch, min, pageSize);
    if (page.length === 0) return;
    const ids: string[] = [];
    for (let i = 0; i < page.length; i += 2) ids.push(page[i]!);
    yield ids;
    if (ids.length < pageSize) return;
    min = `(${page[page.length - 1]}`;
  }
}

/**
 * Up to `limit` rows of a batch's order zset from seq `min` on (a ZRANGE BYSCORE bound: a number,
 * `(n` to exclude it, or "-inf"), as the flat [id, seq, id, seq, ...] reply.
 */
export function orderPage(ctx: LedgerContext, batch: string, min: string, limit: number): Promise<string[]> {
  return ctx.redis.zrange(ctx.keys.order(batch), min, "+inf", "BYSCORE", "LIMIT", 0, limit, "WITHSCORES");
}
