import type { LedgerContext } from "./context.js";
import { type PageReader, type StateEntry, type StatePageOptions, walkPageSize } from "./read-options.js";
import type { IndexedStatus, RowState } from "./types.js";

/**
 * The rows in one state, a page at a time, for a caller that moves rows OUT of the state as it
 * goes (`retry` takes failed rows, `cancel` queued ones): reading costs the rows in the state,
 * whatever the batch holds.
 *
 * `stateIndexPages` skips, among rows of one score, as many as it has seen, which is wrong when
 * the caller removed them meanwhile. Here each page is read only when the caller asks for the next
 * (finish a page before asking), from the last score seen, and the ids already seen at that score
 * are filtered out instead of skipped: a row removed or left in place neither hides another nor
 * comes twice. Only rows in the state when the walk began are visited (by their index score, or
 * those that entered before `enteredBefore`). `read` reads a page's rows: whole (`readRows`), or
 * each row's hash alone (`readRowStates`: the reconciler's).
 */
export async function* drainStatePages<R extends RowState>(
  ctx: LedgerContext,
  batch: string,
  status: IndexedStatus,
  options: StatePageOptions,
  read: PageReader<R>,
): AsyncGenerator<StateEntry<R>[]> {
  const pageSize = walkPageSize(options);
  const key = ctx.keys.stateIndex(batch, status);
  // Rows that enter the state after the walk began are the next walk's: a row retried here that
  // fails again at once must not be taken again and again by the same walk.
  const [, top] = await ctx.redis.zrange(key, "+inf", "-inf", "BYSCORE", "REV", "LIMIT", 0, 1, "WITHSCORES");
  if (top === undefined) return;
  const max = options.enteredBefore === undefined ? top : `(${options.enteredBefore}`;
  let min = "-inf";
  let seenAtMin = new Set<string>();
  for (;;) {
    const count = pageSize + seenAtMin.size;
    const page = await ctx.redis.zrange(key, min, max, "BYSCORE", "LIMIT", 0, count, "WITHSCORES");
    const found: { id: string; score: string }[] = [];
    for (let i = 0; i + 1 < page.length; i += 2) {
      const id = page[i]!;
      if (page[i + 1] === min && seenAtMin.has(id)) continue;
      found.push({ id, score: page[i + 1]! });
    }
    if (found.length === 0) return;
    const rows = await read(
      ctx,
      batch,
      found.map(({ id }) => id),
    );
    const entries: StateEntry<R>[] = [];
    rows.forEach((row, i) => {
      if (row && row.status === status) entries.push({ row, enteredAt: Number(found[i]!.score) });
    });
    const last = found[found.length - 1]!.score;
    if (last !== min) seenAtMin = new Set();
    for (const { id, score } of found) if (score === last) seenAtMin.add(id);
    min = last;
    yield entries;
    if (page.length < count * 2) return;
  }
}
