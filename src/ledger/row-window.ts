import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";
import { readRows } from "./read-rows.js";
import type { RowRecord } from "./types.js";

export interface RowWindowOptions {
  /** Rows after this seq (exclusive), in manifest order; with `reverse`, rows before it. @defaultValue from the start (or the end) */
  after?: number;
  /** Latest rows first. @defaultValue false */
  reverse?: boolean;
  /** Rows read (1..1000). */
  limit: number;
}

export interface RowWindow {
  /** The rows read, in the window's order (rows deleted meanwhile left out). */
  rows: RowRecord[];
  /** The seq to continue from (the last one read), or undefined when the batch has no more rows. */
  next?: number;
}

const MAX_WINDOW = 1000;

/**
 * One window of a batch's rows in manifest order (or its reverse) from a seq cursor: one range
 * read of the order zset and one pipeline of row reads, whatever the batch holds, so a page of a
 * million-row batch costs what a page of a small one does.
 */
export async function rowWindow(
  ctx: LedgerContext,
  batch: string,
  options: RowWindowOptions,
): Promise<RowWindow> {
  const { limit } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_WINDOW) {
    throw new LedgerError("invalid_value", `limit must be a whole number in 1..${MAX_WINDOW}`);
  }
  if (options.after !== undefined && !Number.isFinite(options.after)) {
    throw new LedgerError("invalid_value", "after must be a number");
  }
  const key = ctx.keys.order(batch);
  const page = options.reverse
    ? await ctx.redis.zrange(
        key,
        options.after === undefined ? "+inf" : `(${options.after}`,
        "-inf",
        "BYSCORE",
        "REV",
        "LIMIT",
        0,
        limit,
        "WITHSCORES",
      )
    : await ctx.redis.zrange(
        key,
        options.after === undefined ? "-inf" : `(${options.after}`,
        "+inf",
        "BYSCORE",
        "LIMIT",
        0,
        limit,
        "WITHSCORES",
      );
  const ids: string[] = [];
  for (let i = 0; i + 1 < page.length; i += 2) ids.push(page[i]!);
  if (ids.length === 0) return { rows: [] };
  const rows = (await readRows(ctx, batch, ids)).filter((row): row is RowRecord => row !== undefined);
  const last = Number(page[page.length - 1]);
  return ids.length < limit ? { rows } : { rows, next: last };
}

/** The row's seq (its place in manifest order), or undefined when the batch has no such row. */
export async function rowSeq(ctx: LedgerContext, batch: string, rowId: string): Promise<number | undefined> {
  const score = await ctx.redis.zscore(ctx.keys.order(batch), rowId);
  return score === null ? undefined : Number(score);
}
