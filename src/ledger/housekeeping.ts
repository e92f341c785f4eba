import { RedisScript } from "../redis/script.js";
import { batchSideKeys } from "./batch-keys.js";
import { type LedgerContext, orderPage } from "./context.js";
import { frozenPagesOf } from "./frozen-page.js";

export const PAGE = 500;

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
export function splitPage(page: string[]): { ids: string[]; seqs: number[] } {
  const ids: string[] = [];
  const seqs: number[] = [];
  for (let i = 0; i < page.length; i += 2) {
    ids.push(page[i]!);
    seqs.push(Number(page[i + 1]));
  }
  return { ids, seqs };
}

/** A row's keys: its hash and its body (row-body.ts), expired, persisted and deleted together. */
export function rowKeys(ctx: LedgerContext, batch: string, id: string): [string, string] {
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
