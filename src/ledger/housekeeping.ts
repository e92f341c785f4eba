import { RedisScript } from "../redis/script.js";
import { batchSideKeys } from "./batch-keys.js";
import { markPurging } from "./cancel-mark.js";
import { taskIdsOf } from "./codec.js";
import { type LedgerContext, orderPage } from "./context.js";
import { FROZEN_PAGE_ROWS, frozenPageOf, frozenPagesOf } from "./frozen-page.js";

const PAGE = 500;

/**
 * A batch reopened with its expiry closer than this has its rows persisted at once, by the caller,
 * rather than by the reconciler's sweep (every 5 min by default): a sweep late or missing (no
 * worker running) would let them expire under the reopened batch. 12 default sweep periods.
 */
const URGENT_PERSIST_MS = 60 * 60_000;

// Loaded here rather than in scripts/index.ts: this module is its only user.
const stepScript = RedisScript.fromFile(new URL("./scripts/housekeeping-step.lua", import.meta.url));

/*
 * A batch's expiry (KIE_LEDGER_TTL after it finishes) and its removal (when it reopens) touch every
 * row key: a million of them. So they are a walk in steps of one page, each step atomic and
 * recorded in the batch hash (`hkMode`, `hkAt`, `hkCursor`: the last seq done, `hkDone`: rows
 * done), which any process may resume after a crash. The transition that finishes a batch of one
 * page does its expiry (one step); a larger one's is the reconciler's sweep's, whole: an expiry
 * begun by the finishing transition and never carried on (no worker after the finish) let the
 * first page's rows expire and kept the rest, the batch and its counts for good. The one that
 * reopens a batch takes one step, the sweep the rest (at once when the expiry is near).
 */

/** Where a batch's housekeeping stands. */
export interface HousekeepingProgress {
  /** What the walk does: set the expiry, or remove it. Undefined: nothing was ever asked. */
  mode?: "expire" | "persist";
  /** Rows done so far by the current walk. */
  done: number;
  /** True when nothing is left to do. */
  complete: boolean;
}

interface Plan {
  mode: "expire" | "persist";
  at: string;
  finishedAt: string;
}

/**
 * One step of the batch's housekeeping: a page of rows (and, on the last page, the batch's own
 * keys). The walk wanted is read from the batch: finished with a TTL, expire; reopened after an
 * expiry, persist; `ttlMs` undefined keeps an expiry asked for before. A changed wish restarts
 * the walk from the first row. `onlyLast`: take the step only if it ends the walk (a batch of
 * one page), else leave it whole to the sweep (`housekeep`).
 */
export async function housekeepingStep(
  ctx: LedgerContext,
  batch: string,
  ttlMs: number | undefined,
  options: { onlyLast?: boolean } = {},
): Promise<HousekeepingProgress> {
  const batchKey = ctx.keys.batch(batch);
  const [finishedAt = null, mode = null, at = null, cursor = null, done = null] = await ctx.redis.hmget(
    batchKey,
    "finishedAt",
    "hkMode",
    "hkAt",
    "hkCursor",
    "hkDone",
  );
  const plan = wanted(finishedAt, mode, at, ttlMs);
  if (!plan) return { ...(isMode(mode) ? { mode } : {}), done: Number(done ?? 0), complete: true };
  const same = plan.mode === mode && plan.at === (at ?? "");
  if (same && cursor === "done") return { mode: plan.mode, done: Number(done ?? 0), complete: true };
  const from = same && cursor ? `(${cursor}` : "-inf";
  const before = same ? Number(done ?? 0) : 0;
  const page = await orderPage(ctx, batch, from, PAGE);
  const { ids, seqs } = splitPage(page);
  const last = ids.length < PAGE ? "done" : page[page.length - 1]!;
  if (options.onlyLast && last !== "done") return { mode: plan.mode, done: before, complete: false };
  const batchKeys = batchSideKeys(ctx, batch);
  // The frozen pages (frozen.ts) of this step's seqs get the rows' expiry too: a frozen row has no
  // row or body key left, its page is what holds it. A page across two steps gets it twice, the
  // same value; a page not there (rows not frozen) is a no-op for PEXPIREAT and PERSIST.
  const frozen = frozenPagesOf(seqs).map((p) => ctx.keys.frozen(batch, p));
  const keys = [batchKey, ...batchKeys, ...ids.flatMap((id) => rowKeys(ctx, batch, id)), ...frozen];
  const args = [plan.mode, plan.at, plan.finishedAt, last, before + ids.length, batchKeys.length];
  const applied = (await stepScript.run(ctx.redis, keys, args, ctx.clock)) === 1;
  // Not applied: the batch changed (or went) between the read and the step; the next step sees it.
  if (!applied) return { mode: plan.mode, done: before, complete: false };
  return { mode: plan.mode, done: before + ids.length, complete: last === "done" };
}

/** The ids and seqs of an orderPage reply ([id, seq, id, seq, ...]). */
function splitPage(page: string[]): { ids: string[]; seqs: number[] } {
  const ids: string[] = [];
  const seqs: number[] = [];
  for (let i = 0; i < page.length; i += 2) {
    ids.push(page[i]!);
    seqs.push(Number(page[i + 1]));
  }
  return { ids, seqs };
}

/** A row's keys: its hash and its body (row-body.ts), expired, persisted and deleted together. */
function rowKeys(ctx: LedgerContext, batch: string, id: string): [string, string] {
  return [ctx.keys.row(batch, id), ctx.keys.body(batch, id)];
}

function isMode(value: string | null): value is "expire" | "persist" {
  return value === "expire" || value === "persist";
}

function wanted(
  finishedAt: string | null,
  mode: string | null,
  at: string | null,
  ttlMs: number | undefined,
): Plan | undefined {
  if (finishedAt !== null) {
    if (ttlMs !== undefined) {
      return { mode: "expire", at: String(Math.floor(Number(finishedAt) + ttlMs)), finishedAt };
    }
    // No TTL of our own: keep walking an expiry asked for explicitly (expireFinished).
    return mode === "expire" && at ? { mode: "expire", at, finishedAt } : undefined;
  }
  // Not finished: only a batch that had an expiry needs its keys persisted.
  return mode === "expire" || mode === "persist" ? { mode: "persist", at: "", finishedAt: "" } : undefined;
}

/**
 * Steps until the batch's housekeeping is complete (or `keepGoing` says stop, asked between
 * steps); `onStep` sees the progress after each. Returns the last progress.
 */
export async function housekeep(
  ctx: LedgerContext,
  batch: string,
  ttlMs: number | undefined,
  options: { keepGoing?: () => Promise<boolean>; onStep?: (progress: HousekeepingProgress) => void } = {},
): Promise<HousekeepingProgress> {
  for (;;) {
    const progress = await housekeepingStep(ctx, batch, ttlMs);
    options.onStep?.(progress);
    if (progress.complete) return progress;
    if (options.keepGoing && !(await options.keepGoing())) return progress;
  }
}

/**
 * Lets a finished batch's ledger expire `ttlMs` after its `finishedAt`: PEXPIREAT on every row
 * key, then its zsets and hash, to the end of the walk. Returns false when the batch is not
 * finished, or reopened meanwhile (its keys are then persisted again).
 */
export async function expireFinished(ctx: LedgerContext, batch: string, ttlMs: number): Promise<boolean> {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError("ttlMs must be a positive number");
  if ((await ctx.redis.hget(ctx.keys.batch(batch), "finishedAt")) === null) return false;
  const progress = await housekeep(ctx, batch, ttlMs);
  if (progress.mode === "expire") return true;
  return false;
}

/**
 * After a transition or an append reopened the batch (its script already persisted the batch's
 * hash and side keys; `leftMs`: how long its keys had left, -1 for no expiry): one step of the
 * rows' walk, or, with the expiry within `URGENT_PERSIST_MS`, every step now, a page at a time
 * (never in one script: a million rows would block Redis), until the walk is done or the batch
 * finishes again.
 */
export async function afterReopen(ctx: LedgerContext, batch: string, leftMs: number): Promise<void> {
  if (leftMs < 0 || leftMs >= URGENT_PERSIST_MS) {
    await housekeepingStep(ctx, batch, ctx.ttlMs);
    return;
  }
  for (;;) {
    const progress = await housekeepingStep(ctx, batch, ctx.ttlMs);
    if (progress.complete || progress.mode !== "persist") return;
  }
}

/** Removes any expiry from a batch's keys, to the end of the walk (a reopened batch). */
export async function persistBatch(ctx: LedgerContext, batch: string): Promise<void> {
  await housekeep(ctx, batch, ctx.ttlMs);
}

type Pipeline = ReturnType<LedgerContext["redis"]["pipeline"]>;

/**
 * Deletes every key of a batch: its rows (hash and body), its frozen pages (frozen.ts), their older
 * versions' taskId mappings, its zsets (order, unarchived, state indexes), its hash and its entry
 * in the batch index. Returns the number of rows deleted: a row of the order zset counts when its
 * keys were there or the frozen page of its seq was. Jobs in the queues are not the ledger's: the
 * caller removes those.
 */
export async function purge(ctx: LedgerContext, batch: string): Promise<number> {
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
  // The batch's own keys (one slot), then its index entry (the deployment's slot): an entry left
  // by a purge cut short names a batch with no hash, which listBatches drops.
  await ctx.redis.unlink(...batchSideKeys(ctx, batch), ctx.keys.reservedEnded(batch), ctx.keys.batch(batch));
  await ctx.redis.zrem(ctx.keys.batches, batch);
  return deleted;
}

async function execOrThrow(pipeline: Pipeline): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
