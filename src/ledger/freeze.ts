import { promisify } from "node:util";
import { brotliCompress } from "node:zlib";
import type { FlatHash } from "./codec.js";
import type { LedgerContext } from "./context.js";
import { type FrozenRecord, frozenPageInput, frozenPageValue } from "./frozen.js";
import { FROZEN_PAGE_ROWS, frozenPageOf } from "./frozen-page.js";
import { freezeScript } from "./scripts/index.js";

/*
 * Freezing a batch (frozen.ts): a walk over its pages in seq order, a page a step, its cursor
 * (`frozenTo`, the first seq not passed yet) in the batch hash, so any process resumes it after a
 * crash and a sweep costs the pages that became ready since the last one, not the batch. A page is
 * passed when none of its rows is on its way: its archived rows are frozen; its failed and
 * cancelled rows keep their keys (retry and the failure list act on them), and so do an archived
 * row holding a task counted uncertain (settle.lua may still take its charge back) and a row
 * parked over the budget of a window-managed batch. The walk stops at the first page with a row
 * still moving or held back by the submit window, a row archived less than `settleMs` ago (a
 * retried archive or settle of its task is then long over), or rows not all added yet (the last
 * page of a batch not finished a settle period ago): the next sweep tries it again.
 */

const MOVING = new Set(["queued", "submitted", "generating", "archiving"]);

/**
 * Pages one sweep freezes per batch at most (64,000 rows, some 4,000 round trips): a batch of a
 * million rows that just finished is frozen over a few sweeps, and the sweep's other work (rows
 * that need their job back) never waits long behind it.
 */
const FREEZE_PAGES_PER_SWEEP = 1000;

const compress = promisify(brotliCompress);

export interface FreezeOptions {
  /** An archived row is frozen only once it has not changed for this long. */
  settleMs: number;
  /** Asked between steps; false stops the walk (resumable). */
  keepGoing?: () => Promise<boolean>;
  /** Pages this walk passes at most. @defaultValue FREEZE_PAGES_PER_SWEEP */
  maxPages?: number;
  /**
   * The walk's "now", compared with the rows' stamps (the Redis server's clock: the reconciler's
   * synced `ServerClock`). @defaultValue the ledger's clock, else this machine's
   */
  clock?: { now(): number };
}

/** Where a batch's freezing stands after a walk. */
export interface FreezeProgress {
  /** Rows frozen by this walk. */
  frozen: number;
  /** Pages passed by this walk. */
  pages: number;
  /**
   * Every row of the batch is passed. False when the walk stopped early: at a page not ready yet,
   * after `maxPages`, when `keepGoing` said stop, or after three steps raced a change (the next
   * walk reads again).
   */
  complete: boolean;
}

type Step =
  | { kind: "passed"; frozen: number }
  | { kind: "waiting" }
  | { kind: "complete" }
  | { kind: "raced" };

/** One page of the walk. "raced": the batch or a row changed under it; the caller reads again. */
async function freezeStep(ctx: LedgerContext, batch: string, settleMs: number, now: number): Promise<Step> {
  const batchKey = ctx.keys.batch(batch);
  const [frozenTo = null, nextSeq = null, finishedAt = null, fedSeq = null] = await ctx.redis.hmget(
    batchKey,
    "frozenTo",
    "nextSeq",
    "finishedAt",
    "fedSeq",
  );
  if (nextSeq === null) return { kind: "complete" };
  const cursor = Number(frozenTo ?? 0);
  if (cursor >= Number(nextSeq)) return { kind: "complete" };
  const page = frozenPageOf(cursor);
  const first = page * FROZEN_PAGE_ROWS;
  const last = first + FROZEN_PAGE_ROWS - 1;
  // A page not all added yet takes rows later: a batch's last page is passed only once the batch
  // has been finished for a settle period (an append right after its end still finds it open).
  if (last >= Number(nextSeq) && (finishedAt === null || now - Number(finishedAt) < settleMs)) {
    return { kind: "waiting" };
  }
  const ids = await ctx.redis.zrange(ctx.keys.order(batch), first, last, "BYSCORE");
  const read = ctx.redis.pipeline();
  for (const id of ids) {
    read.hgetall(ctx.keys.row(batch, id));
    read.get(ctx.keys.body(batch, id));
  }
  const replies = ids.length === 0 ? [] : ((await read.exec()) ?? []);
  const records: FrozenRecord[] = [];
  for (const [i, id] of ids.entries()) {
    const [hashErr, hash] = replies[2 * i] ?? [new Error("no reply")];
    const [bodyErr, body] = replies[2 * i + 1] ?? [new Error("no reply")];
    if (hashErr) throw hashErr;
    if (bodyErr) throw bodyErr;
    const row = hash as FlatHash;
    const status = row.status;
    if (status !== undefined && MOVING.has(status)) {
      // A row parked over the budget of a window-managed batch may wait for days: it keeps its
      // keys and the walk goes past it, as past a failed row (rows after it that fit the budget
      // go on and are frozen). Such rows are at most about two windows, 1,000 at least (feed.lua
      // parks no more), so those archived after a raise, behind the cursor, for good in their
      // keys, are few. Anything else stops the walk here: a row with a job on its
      // way until it ends, and a held row (the window's tail: nothing after it is archived yet)
      // until it is fed and done, so a batch stopped on its budget is frozen once it goes on.
      const parkedInWindow = fedSeq !== null && row.waitingBudget === "1" && Number(row.seq) < Number(fedSeq);
      if (parkedInWindow) continue;
      return { kind: "waiting" };
    }
    // Only archived rows are frozen. Kept: failed and cancelled rows (retry and the failure list
    // act on them), a row gone meanwhile (a purge: the script's checks settle the race), a row
    // holding a task counted uncertain (settle.lua may still take its charge back), and a row
    // without the updatedAt the script checks.
    if (status !== "archived" || row.updatedAt === undefined) continue;
    if (now - Number(row.updatedAt) < settleMs) return { kind: "waiting" };
    if (Object.keys(row).some((field) => field.startsWith("uncertain:"))) continue;
    records.push({ id, hash: row, body: body as string | null });
  }
  const keys = [batchKey, ctx.keys.frozen(batch, page)];
  for (const { id } of records) keys.push(ctx.keys.row(batch, id), ctx.keys.body(batch, id));
  const args = [
    frozenTo ?? "",
    String(last + 1),
    records.length === 0 ? "" : frozenPageValue(await compress(...frozenPageInput(records))),
    ...records.map(({ hash }) => hash.updatedAt ?? ""),
  ];
  const applied = (await freezeScript.run(ctx.redis, keys, args, ctx.clock)) === 1;
  return applied ? { kind: "passed", frozen: records.length } : { kind: "raced" };
}

/**
 * Freezes a batch's settled pages from its cursor on, a page a step, until a page that is not
 * ready, the end of the batch, or `keepGoing` says stop. Safe beside workers moving its rows and
 * beside another walk (each step is checked against the cursor and rows it read).
 */
export async function freezeBatch(
  ctx: LedgerContext,
  batch: string,
  options: FreezeOptions,
): Promise<FreezeProgress> {
  const maxPages = options.maxPages ?? FREEZE_PAGES_PER_SWEEP;
  let frozen = 0;
  let pages = 0;
  let raced = 0;
  for (;;) {
    if (pages >= maxPages) return { frozen, pages, complete: false };
    // Asked before every step, the first too: a closing or lease-less sweep does none.
    if (options.keepGoing && !(await options.keepGoing())) return { frozen, pages, complete: false };
    const now = options.clock?.now() ?? ctx.clock?.now() ?? Date.now();
    const step = await freezeStep(ctx, batch, options.settleMs, now);
    if (step.kind === "complete") return { frozen, pages, complete: true };
    if (step.kind === "waiting") return { frozen, pages, complete: false };
    if (step.kind === "raced") {
      // A row archived again or a second walk: read again, a few times, then leave it to the
      // next sweep rather than spin against a busy page.
      if (++raced >= 3) return { frozen, pages, complete: false };
    } else {
      raced = 0;
      frozen += step.frozen;
      pages++;
    }
  }
}
