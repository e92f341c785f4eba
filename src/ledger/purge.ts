/**
 * `purge`'s ledger side: every key of a batch deleted a page at a time, resumable (a purge cut
 * short is run again), under the batch's `purging` mark (cancel-mark.ts), which stays until the
 * caller has removed the batch's jobs and slots too (`finishPurge`).
 */
import { batchSideKeys } from "./batch-keys.js";
import { markPurging } from "./cancel-mark.js";
import { taskIdsOf } from "./codec.js";
import { type LedgerContext, orderPage } from "./context.js";
import { FROZEN_PAGE_ROWS, frozenPageOf, frozenPagesOf } from "./frozen-page.js";
import { PAGE, rowKeys, splitPage } from "./housekeeping.js";

type Pipeline = ReturnType<LedgerContext["redis"]["pipeline"]>;

/**
 * Deletes every key of a batch: its rows (hash and body), its frozen pages (frozen.ts), their older
 * versions' taskId mappings, its zsets (order, unarchived, state indexes), its hash and its entry
 * in the batch index. Returns the number of rows deleted: a row of the order zset counts when its
 * keys were there or the frozen page of its seq was. Jobs in the queues are not the ledger's: the
 * caller removes those, and with `keepMark` the batch's hash (its `purging` mark) and index entry
 * stay until it has (`finishPurge`), so no enqueue makes the batch anew while they go.
 */
export async function purge(
  ctx: LedgerContext,
  batch: string,
  options: { keepMark?: boolean } = {},
): Promise<number> {
  // First: no row not yet deleted is created meanwhile (a walk of a million rows takes a while).
  await markPurging(ctx, batch);
  let deleted = 0;
  // Frozen pages this purge found and deleted; pages it put off (they run past a step's end: the
  // next step deletes them, or the end does), with the keyless rows of theirs it met so far.
  const pagesFound = new Set<number>();
  const waitingForPage = new Map<number, string[]>();
  // Walk by seq cursor while deleting: each page starts after the last seq seen, so deleting
  // rows (and their order entries) does not shift the next page. A frozen row (no row key, only
  // its order entry) is found by its entry, and its page with it, before the entry goes.
  let from = "-inf";
  for (;;) {
    const page = await orderPage(ctx, batch, from, PAGE);
    if (page.length === 0) break;
    const { ids, seqs } = splitPage(page);
    const read = ctx.redis.pipeline();
    // Only rows of the `taskIds` list layout can have task map entries: a row with `task:<id>`
    // fields never had one, so their list is all that is read.
    for (const id of ids) read.hget(ctx.keys.row(batch, id), "taskIds");
    const replies = await execOrThrow(read);
    // Task map entries left by versions that wrote them (keys.ts `task`; none is written now):
    // each its own Cluster slot, one DEL each, all sent at once, before the rows that name them.
    await Promise.all(
      replies.flatMap((list) =>
        (typeof list === "string" && list !== "" ? taskIdsOf({ taskIds: list }) : [])
          .filter((id) => typeof id === "string" && id !== "")
          .map((id) => ctx.redis.del(ctx.keys.task(id))),
      ),
    );
    const last = ids.length < PAGE;
    const del = ctx.redis.pipeline();
    for (const id of ids) del.unlink(...rowKeys(ctx, batch, id));
    // One UNLINK per frozen page, to learn which were there: 9 at most for 500 consecutive seqs. A
    // page running past this step's last seq holds rows of the next step: it goes with them, so a
    // purge cut short in between leaves it whole (its rows still found, by their order entries).
    const lastSeq = seqs[seqs.length - 1]!;
    const stepPages = frozenPagesOf(seqs);
    const pages = stepPages.filter((p) => last || (p + 1) * FROZEN_PAGE_ROWS - 1 <= lastSeq);
    for (const p of stepPages) if (!pages.includes(p)) waitingForPage.set(p, waitingForPage.get(p) ?? []);
    for (const p of pages) del.unlink(ctx.keys.frozen(batch, p));
    const removed = (await execOrThrow(del)).map(Number);
    // Rows gone with this step: their order entries go too (below).
    const gone: string[] = [];
    pages.forEach((p, i) => {
      if (removed[ids.length + i]! >= 1) {
        pagesFound.add(p);
        gone.push(...(waitingForPage.get(p) ?? []));
      }
      waitingForPage.delete(p);
    });
    // A row counts once, whether it had a body (2 keys removed) or not (written before bodies),
    // or had neither and lived in a frozen page (counted when that page goes). Its order entry
    // goes with it: a purge cut short leaves no entry of a row it deleted, which add-rows.lua
    // would count as a row still there (frozen, or expired), never to be enqueued again.
    ids.forEach((id, i) => {
      const page = frozenPageOf(seqs[i]!);
      if (removed[i]! >= 1 || pagesFound.has(page)) gone.push(id);
      else waitingForPage.get(page)?.push(id);
    });
    deleted += gone.length;
    if (gone.length > 0) await ctx.redis.zrem(ctx.keys.order(batch), ...gone);
    if (last) break;
    from = `(${page[page.length - 1]}`;
  }
  // Pages still put off (the walk ended on a step of exactly PAGE entries, or the next step's seqs
  // start past them): their keyless rows count if they were there.
  for (const [p, rows] of waitingForPage) {
    if ((await ctx.redis.unlink(ctx.keys.frozen(batch, p))) >= 1) deleted += rows.length;
  }
  if (options.keepMark === true)
    await ctx.redis.unlink(...batchSideKeys(ctx, batch), ctx.keys.reservedEnded(batch));
  else await finishPurge(ctx, batch);
  return deleted;
}

/**
 * The last of a purge: the batch's own keys (one slot: its side keys again, which a write that
 * met the mark may have made meanwhile, and its hash, the `purging` mark with it), then its index
 * entry (the deployment's slot): an entry left by a purge cut short in between names a batch with
 * no hash, which listBatches drops.
 */
export async function finishPurge(ctx: LedgerContext, batch: string): Promise<void> {
  await ctx.redis.unlink(...batchSideKeys(ctx, batch), ctx.keys.reservedEnded(batch), ctx.keys.batch(batch));
  await ctx.redis.zrem(ctx.keys.batches, batch);
}

async function execOrThrow(pipeline: Pipeline): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
