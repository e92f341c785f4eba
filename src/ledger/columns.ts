import { RedisScript } from "../redis/script.js";
import type { LedgerContext } from "./context.js";

/*
 * A batch's metadata column names, kept as rows are recorded, so `results --format csv` can write
 * its header without reading every row first (one pass over a million rows, not two).
 */

// Loaded here rather than in scripts/index.ts: this module is its only user.
const columnsScript = RedisScript.fromFile(new URL("./scripts/columns.lua", import.meta.url));

/** Set on a batch hash created with its columns kept from its first row on. */
const KEPT_FIELD = "columnsKept";

/** ZSET column name -> rank of first appearance; beside the batch hash, in its hash tag. */
export function columnsKey(ctx: LedgerContext, batch: string): string {
  return `${ctx.keys.batch(batch)}:columns`;
}

/**
 * Adds names not yet known, in order; true when the batch already existed. With `existing`, only
 * to a batch that exists (nothing is written for one deleted meanwhile).
 */
export async function recordColumns(
  ctx: LedgerContext,
  batch: string,
  names: readonly string[],
  existing = false,
): Promise<boolean> {
  const keys = [columnsKey(ctx, batch), ctx.keys.batch(batch)];
  return (await columnsScript.run(ctx.redis, keys, [existing ? "1" : "", ...names], ctx.clock)) === 1;
}

/** Marks a batch this process created as having every column kept (after its first rows). */
export async function markColumnsKept(ctx: LedgerContext, batch: string): Promise<void> {
  // Only if the batch exists: a purge meanwhile must not leave a stray hash behind.
  const batchKey = ctx.keys.batch(batch);
  if ((await ctx.redis.exists(batchKey)) === 1) await ctx.redis.hset(batchKey, KEPT_FIELD, "1");
}

/**
 * The batch's metadata column names in order of first appearance (in manifest order, for rows
 * recorded by one producer at a time); undefined when they are not known: a batch recorded before
 * columns were kept, or whose first `addRows` died before marking it.
 */
export async function batchColumns(ctx: LedgerContext, batch: string): Promise<string[] | undefined> {
  const kept = await ctx.redis.hget(ctx.keys.batch(batch), KEPT_FIELD);
  if (kept !== "1") return undefined;
  return ctx.redis.zrange(columnsKey(ctx, batch), 0, -1);
}
