import { columnsKey } from "./columns.js";
import { type LedgerContext, rowIdPages } from "./context.js";

const PAGE = 500;

/**
 * Lets a finished batch's ledger expire `ttlMs` after its `finishedAt`: PEXPIREAT on the batch
 * hash, its zsets and every row key, page by page (too many keys for one script). Returns false,
 * changing nothing, when the batch is not finished. Task map keys keep their own TTL.
 *
 * Rows appended or retried while this runs clear `finishedAt`; the check afterwards then undoes
 * the expiry, so a reopened batch never keeps a TTL.
 */
export async function expireFinished(ctx: LedgerContext, batch: string, ttlMs: number): Promise<boolean> {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError("ttlMs must be a positive number");
  const batchKey = ctx.keys.batch(batch);
  const finishedAt = await ctx.redis.hget(batchKey, "finishedAt");
  if (finishedAt === null) return false;
  const at = Math.floor(Number(finishedAt) + ttlMs);
  await applyToBatch(ctx, batch, (pipeline, key) => pipeline.pexpireat(key, at));
  if ((await ctx.redis.hget(batchKey, "finishedAt")) === null) {
    await persistBatch(ctx, batch);
    return false;
  }
  return true;
}

/** Removes any expiry from a batch's keys (after rows were appended to, or retried in, a finished batch). */
export async function persistBatch(ctx: LedgerContext, batch: string): Promise<void> {
  await applyToBatch(ctx, batch, (pipeline, key) => pipeline.persist(key));
}

type Pipeline = ReturnType<LedgerContext["redis"]["pipeline"]>;

async function applyToBatch(
  ctx: LedgerContext,
  batch: string,
  command: (pipeline: Pipeline, key: string) => void,
): Promise<void> {
  // Rows first, the batch hash last: a crash midway leaves the batch itself in its old state, still
  // listed and purgeable, rather than orphan rows that nothing lists.
  for await (const ids of rowIdPages(ctx, batch, PAGE)) {
    const pipeline = ctx.redis.pipeline();
    for (const id of ids) command(pipeline, ctx.keys.row(batch, id));
    await execOrThrow(pipeline);
  }
  const pipeline = ctx.redis.pipeline();
  command(pipeline, ctx.keys.order(batch));
  command(pipeline, ctx.keys.unarchived(batch));
  for (const key of ctx.keys.stateIndexes(batch)) command(pipeline, key);
  command(pipeline, columnsKey(ctx, batch));
  command(pipeline, ctx.keys.batch(batch));
  await execOrThrow(pipeline);
}

/**
 * Deletes every key of a batch: its rows, their taskId mappings, its zsets (order, unarchived,
 * state indexes), its hash and its
 * entry in the batch index. Returns the number of rows deleted. Jobs in the queues are not the
 * ledger's: the caller removes those.
 */
export async function purge(ctx: LedgerContext, batch: string): Promise<number> {
  let deleted = 0;
  // Walk by seq cursor while deleting: each page starts after the last seq seen, so deleting
  // rows does not shift the next page.
  for await (const ids of rowIdPages(ctx, batch, PAGE)) {
    const read = ctx.redis.pipeline();
    for (const id of ids) read.hget(ctx.keys.row(batch, id), "taskIds");
    const replies = await execOrThrow(read);
    const del = ctx.redis.pipeline();
    replies.forEach((taskIds, i) => {
      for (const taskId of parseTaskIds(taskIds)) del.del(ctx.keys.task(taskId));
      del.unlink(ctx.keys.row(batch, ids[i]!));
    });
    const results = await execOrThrow(del);
    deleted += countRowDeletes(results, replies);
  }
  await execOrThrow(
    ctx.redis
      .pipeline()
      .unlink(
        ctx.keys.order(batch),
        ctx.keys.unarchived(batch),
        ...ctx.keys.stateIndexes(batch),
        columnsKey(ctx, batch),
        ctx.keys.parked(batch),
        ctx.keys.batch(batch),
      )
      .zrem(ctx.keys.batches, batch),
  );
  return deleted;
}

function parseTaskIds(value: unknown): string[] {
  if (typeof value !== "string" || value === "") return [];
  const parsed: unknown = JSON.parse(value);
  return Array.isArray(parsed)
    ? parsed.filter((id): id is string => typeof id === "string" && id !== "")
    : [];
}

/** Counts the row UNLINKs that removed a key: each row's reply follows its task DELs. */
function countRowDeletes(results: unknown[], taskIdReplies: unknown[]): number {
  let index = 0;
  let count = 0;
  for (const taskIds of taskIdReplies) {
    index += parseTaskIds(taskIds).length;
    if (results[index] === 1) count += 1;
    index += 1;
  }
  return count;
}

async function execOrThrow(pipeline: Pipeline): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
