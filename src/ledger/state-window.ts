import type { LedgerContext } from "./context.js";
import { LedgerError } from "./errors.js";
import { readRows } from "./read-rows.js";
import type { RowWindow, RowWindowOptions } from "./row-window.js";
import { INDEXED_STATUSES, type IndexedStatus, type RowRecord } from "./types.js";

/** Rows the states may hold together for a window to come from their indexes. */
const MAX_STATE_ROWS = 10_000;

/**
 * A window of a batch's rows in some indexed states, in manifest order (or its reverse) from a
 * seq cursor, as `rowWindow` pages them, but found through the state indexes: a million-row
 * batch with ten failed rows costs ten reads, not a walk of the manifest. The states' ids (at most
 * MAX_STATE_ROWS) are read with their seqs and sorted; only the window's rows are read.
 * Undefined when the batch has no state indexes yet (made before they existed) or the states
 * hold more rows than that: then they are common, and a walk in manifest order finds them.
 */
export async function stateWindow(
  ctx: LedgerContext,
  batch: string,
  statuses: readonly IndexedStatus[],
  options: RowWindowOptions,
): Promise<RowWindow | undefined> {
  for (const status of statuses) {
    if (!(INDEXED_STATUSES as readonly string[]).includes(status))
      throw new LedgerError("invalid_value", `no state index for ${JSON.stringify(status)}`);
  }
  const { limit, after, reverse } = options;
  if (!Number.isInteger(limit) || limit < 1)
    throw new LedgerError("invalid_value", "limit must be a whole number");
  const counting = ctx.redis.pipeline().hget(ctx.keys.batch(batch), "stateIndexed");
  for (const status of statuses) counting.zcard(ctx.keys.stateIndex(batch, status));
  const counts = (await counting.exec()) ?? [];
  for (const [err] of counts) if (err) throw err;
  if (counts[0]?.[1] === null) return undefined;
  const total = counts.slice(1).reduce((sum, [, n]) => sum + Number(n), 0);
  if (total > MAX_STATE_ROWS) return undefined;
  if (total === 0) return { rows: [] };

  const listing = ctx.redis.pipeline();
  for (const status of statuses) listing.zrange(ctx.keys.stateIndex(batch, status), 0, -1);
  const ids = ((await listing.exec()) ?? []).flatMap(([err, page]) => {
    if (err) throw err;
    return page as string[];
  });
  const seqs = ids.length === 0 ? [] : await ctx.redis.zmscore(ctx.keys.order(batch), ...ids);
  const placed = ids
    .map((id, i) => ({ id, seq: seqs[i] === null ? Number.NaN : Number(seqs[i]) }))
    .filter(({ seq }) => !Number.isNaN(seq) && (after === undefined || (reverse ? seq < after : seq > after)))
    .sort((a, b) => (reverse ? b.seq - a.seq : a.seq - b.seq));
  const taken = placed.slice(0, limit);
  if (taken.length === 0) return { rows: [] };
  const rows: RowRecord[] = [];
  for (const row of await readRows(
    ctx,
    batch,
    taken.map(({ id }) => id),
  )) {
    // A row that moved on since the index was read is left out, as the filter would.
    if (row && (statuses as readonly string[]).includes(row.status)) rows.push(row);
  }
  return placed.length > limit ? { rows, next: taken[taken.length - 1]!.seq } : { rows };
}
