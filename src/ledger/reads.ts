import { type FlatHash, parseBatch } from "./codec.js";
import { type LedgerContext, rowIdPages } from "./context.js";
import { checkName } from "./keys.js";
import type { RowsOptions } from "./read-options.js";
import { readRowState, readRows } from "./read-rows.js";
import type { BatchSummary, RowRecord, RowState, Status } from "./types.js";

export async function getBatch(ctx: LedgerContext, batch: string): Promise<BatchSummary | undefined> {
  return parseBatch(batch, await ctx.redis.hgetall(ctx.keys.batch(batch)));
}

/**
 * Every batch, newest first. A batch whose hash has expired is dropped from the index on the way
 * (expiry removes keys, never sorted-set members).
 */
export async function listBatches(ctx: LedgerContext): Promise<BatchSummary[]> {
  const names = await ctx.redis.zrevrange(ctx.keys.batches, 0, -1);
  if (names.length === 0) return [];
  // One command per batch, all sent at once: each batch is its own Cluster slot, and a pipeline
  // must stay in one.
  const hashes = await Promise.all(names.map((name) => ctx.redis.hgetall(ctx.keys.batch(name))));
  const out: BatchSummary[] = [];
  const gone: string[] = [];
  names.forEach((name, i) => {
    const summary = parseBatch(name, hashes[i] as FlatHash);
    if (summary) out.push(summary);
    else gone.push(name);
  });
  if (gone.length > 0) await ctx.redis.zrem(ctx.keys.batches, ...gone);
  return out;
}

export async function getRow(
  ctx: LedgerContext,
  batch: string,
  rowId: string,
): Promise<RowRecord | undefined> {
  const [row] = await readRows(ctx, batch, [rowId]);
  return row;
}

/** A row without its body (read-rows.ts `readRowState`): one HGETALL. */
export function getRowState(ctx: LedgerContext, batch: string, rowId: string): Promise<RowState | undefined> {
  return readRowState(ctx, batch, rowId);
}

/** A batch's rows in seq order, optionally only some states; one pipelined round trip per page. */
export async function* rows(
  ctx: LedgerContext,
  batch: string,
  options: RowsOptions = {},
): AsyncGenerator<RowRecord> {
  const pageSize = options.pageSize ?? 500;
  if (!Number.isInteger(pageSize) || pageSize < 1)
    throw new RangeError("pageSize must be a positive integer");
  const wanted: ReadonlySet<Status> | undefined = options.statuses ? new Set(options.statuses) : undefined;
  checkName("batch", batch);
  for await (const ids of rowIdPages(ctx, batch, pageSize)) {
    for (const row of await readRows(ctx, batch, ids)) {
      // A row can vanish mid-walk (purged or expired): skip it.
      if (row && (!wanted || wanted.has(row.status))) yield row;
    }
  }
}

/** The row waiting longest in `archiving` (smallest provider completion time). */
export async function oldestUnarchived(
  ctx: LedgerContext,
  batch: string,
): Promise<{ rowId: string; completedAt: number } | undefined> {
  const [rowId, score] = await ctx.redis.zrange(ctx.keys.unarchived(batch), 0, 0, "WITHSCORES");
  if (rowId === undefined || score === undefined) return undefined;
  return { rowId, completedAt: Number(score) };
}
