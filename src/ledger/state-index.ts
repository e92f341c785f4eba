import { type LedgerContext, rowIdPages } from "./context.js";
import { LedgerError } from "./errors.js";
import { checkName } from "./keys.js";
import { type PageReader, type StateEntry, type StatePageOptions, walkPageSize } from "./read-options.js";
import { readRowStates, readRows } from "./read-rows.js";
import { countRepairsScript, indexRowsScript, leaseScript } from "./scripts/index.js";
import { INDEXED_STATUSES, type IndexedStatus, type RowState } from "./types.js";

const PAGE = 500;

/**
 * Gives a batch created before the state indexes existed its indexes, page by page (once; later
 * calls cost one HGET). Safe while workers move its rows: see scripts/index-rows.lua.
 */
export async function ensureStateIndex(ctx: LedgerContext, batch: string): Promise<void> {
  const batchKey = ctx.keys.batch(batch);
  const [indexed, createdAt] = await ctx.redis.hmget(batchKey, "stateIndexed", "createdAt");
  if (indexed !== null || createdAt === null) return;
  const indexes = ctx.keys.stateIndexes(batch);
  for await (const ids of rowIdPages(ctx, batch, PAGE)) {
    const rowKeys = ids.map((id) => ctx.keys.row(batch, id));
    await indexRowsScript.run(ctx.redis, [...indexes, ...rowKeys], ids, ctx.clock);
  }
  // Only if the batch still exists: a purge meanwhile must not leave a stray hash behind.
  if ((await ctx.redis.exists(batchKey)) === 1) await ctx.redis.hset(batchKey, "stateIndexed", "1");
}

/**
 * The rows in one state, oldest entry first, one page per round trip pair (the index page, then
 * the rows pipelined): the walk costs the rows in the state, whatever the batch holds.
 *
 * The cursor is (score, rank among equal scores), so many rows entering in one millisecond do
 * not stall the walk. A row that leaves the state while the walk passes may shift one page by one
 * and be seen on the next walk instead; a row seen here may have moved on since (check with
 * `stillInState` before acting on it).
 */
export function stateIndexPages(
  ctx: LedgerContext,
  batch: string,
  status: IndexedStatus,
  options: StatePageOptions = {},
): AsyncGenerator<StateEntry[]> {
  return walkStateIndex(ctx, batch, status, options, readRows);
}

/** `stateIndexPages` with each row's state alone (its hash: no prompt, params or images read). */
export function stateIndexStatePages(
  ctx: LedgerContext,
  batch: string,
  status: IndexedStatus,
  options: StatePageOptions = {},
): AsyncGenerator<StateEntry<RowState>[]> {
  return walkStateIndex(ctx, batch, status, options, readRowStates);
}

async function* walkStateIndex<R extends RowState>(
  ctx: LedgerContext,
  batch: string,
  status: IndexedStatus,
  options: StatePageOptions,
  read: PageReader<R>,
): AsyncGenerator<StateEntry<R>[]> {
  checkIndexed(status);
  const pageSize = walkPageSize(options);
  const key = ctx.keys.stateIndex(batch, status);
  const max = options.enteredBefore === undefined ? "+inf" : `(${options.enteredBefore}`;
  let min = "-inf";
  let skip = 0;
  for (;;) {
    // Read before the page (see `unheld`).
    const fedSeq = options.skipHeld ? await ctx.redis.hget(ctx.keys.batch(batch), "fedSeq") : null;
    const page = await ctx.redis.zrange(key, min, max, "BYSCORE", "LIMIT", skip, pageSize, "WITHSCORES");
    if (page.length === 0) return;
    const found: { id: string; score: string }[] = [];
    for (let i = 0; i + 1 < page.length; i += 2) found.push({ id: page[i]!, score: page[i + 1]! });
    const kept = options.skipParked ? await unparked(ctx, batch, found) : found;
    const wanted = fedSeq === null ? kept : await unheld(ctx, batch, kept, Number(fedSeq));
    const rows = await read(
      ctx,
      batch,
      wanted.map(({ id }) => id),
    );
    const entries: StateEntry<R>[] = [];
    rows.forEach((row, i) => {
      if (row && row.status === status) entries.push({ row, enteredAt: Number(wanted[i]!.score) });
    });
    yield entries;
    if (found.length < pageSize) return;
    const last = found[found.length - 1]!.score;
    const sameScore = found.filter(({ score }) => score === last).length;
    skip = min === last ? skip + sameScore : sameScore;
    min = last;
  }
}

/** The entries not in the batch's parked set (one ZMSCORE for the page). */
async function unparked<T extends { id: string }>(
  ctx: LedgerContext,
  batch: string,
  found: T[],
): Promise<T[]> {
  if (found.length === 0) return found;
  const scores = await ctx.redis.zmscore(ctx.keys.parked(batch), ...found.map(({ id }) => id));
  return found.filter((_, i) => scores[i] === null);
}

/**
 * The entries that are not held rows of a window-managed batch (seq >= its `fedSeq`: no job by
 * design), by the `fedSeq` read before the page. feed.lua moves `fedSeq` before its caller adds
 * the jobs, so a value read later would take rows fed during the walk, whose adds may not have
 * landed yet, for jobless fed rows (a false repair); read first, such rows count as held and are
 * left to the next walk. (An add still in flight when `fedSeq` was read can still be met: the
 * repair adds the same job id, one job either way.)
 */
async function unheld<T extends { id: string }>(
  ctx: LedgerContext,
  batch: string,
  found: T[],
  fedSeq: number,
): Promise<T[]> {
  if (found.length === 0) return found;
  const seqs = await ctx.redis.zmscore(ctx.keys.order(batch), ...found.map(({ id }) => id));
  return found.filter((_, i) => seqs[i] !== null && Number(seqs[i]) < fedSeq);
}

/**
 * Which of `entries` are still in `status` since the same moment (same index score): a row that
 * moved on, or left and came back, is not the one that was judged.
 */
export async function stillInState(
  ctx: LedgerContext,
  batch: string,
  status: IndexedStatus,
  entries: readonly { id: string; enteredAt: number }[],
): Promise<boolean[]> {
  checkIndexed(status);
  if (entries.length === 0) return [];
  const key = ctx.keys.stateIndex(batch, status);
  const scores = await ctx.redis.zmscore(key, ...entries.map(({ id }) => id));
  return entries.map(({ enteredAt }, i) => scores[i] !== null && Number(scores[i]) === enteredAt);
}

/** Adds `count` to the batch's `repaired` counter; false when the batch is gone. */
export async function countRepairs(ctx: LedgerContext, batch: string, count: number): Promise<boolean> {
  if (!Number.isInteger(count) || count < 0)
    throw new LedgerError("invalid_value", "count must be a whole number");
  if (count === 0) return (await ctx.redis.exists(ctx.keys.batch(batch))) === 1;
  return Number(await countRepairsScript.run(ctx.redis, [ctx.keys.batch(batch)], [count], ctx.clock)) >= 0;
}

/**
 * Takes (or, for its holder, renews) the fleet-wide lease `name` for `ttlMs`. True when `owner`
 * holds it now. A holder that dies simply lets it lapse.
 */
export async function claimLease(
  ctx: LedgerContext,
  name: string,
  owner: string,
  ttlMs: number,
): Promise<boolean> {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new RangeError("ttlMs must be a positive whole number");
  checkName("lease owner", owner);
  return (await leaseScript.run(ctx.redis, [ctx.keys.lease(name)], [owner, ttlMs], ctx.clock)) === 1;
}

/**
 * Lets the fleet-wide lease `name` go, if `owner` holds it (a worker closing: the next holder need
 * not wait for it to lapse). True when it was `owner`'s and is gone; a lease another holder took
 * after `owner`'s lapsed is left alone.
 */
export async function releaseLease(ctx: LedgerContext, name: string, owner: string): Promise<boolean> {
  checkName("lease owner", owner);
  return (await leaseScript.run(ctx.redis, [ctx.keys.lease(name)], [owner, 0], ctx.clock)) === 1;
}

function checkIndexed(status: string): asserts status is IndexedStatus {
  if (!(INDEXED_STATUSES as readonly string[]).includes(status)) {
    throw new LedgerError("invalid_value", `no state index for ${JSON.stringify(status)}`);
  }
}
