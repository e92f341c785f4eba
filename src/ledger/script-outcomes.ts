/*
 * What the budget and window scripts answer (reserve.lua, settle.lua, wake.lua, feed.lua), as their
 * callers in money.ts, parked.ts and feed.ts return it. A leaf: types.ts re-exports these.
 */

/**
 * `over-budget`: nothing reserved; the row is marked waiting and parked (its job may end: a wake
 * gives it a new one). `purging`: nothing reserved; `purge` is deleting the batch, so nothing of
 * it is created (and paid for) any more: the job ends. `cancelled`: nothing reserved; `cancel`
 * marked the batch, and its walk had not reached the row yet (or was cut short): the caller
 * cancels it.
 */
export type ReserveOutcome = "reserved" | "over-budget" | "no-budget" | "purging" | "cancelled";

/** `already-settled`: the task's cost was counted by an earlier call. */
export type SettleOutcome = "settled" | "already-settled";

/** What one `wakeParked` call woke: each row with the submit lineage its new job takes. */
export interface WakeResult {
  woken: { rowId: string; resubmit: number }[];
  /** The batch's submit priority (enqueue --priority): the woken rows' jobs take it. */
  priority?: number;
  /** Present when more parked rows may fit: ask again from it. */
  next?: WakeCursor;
}

/** Where a wake's walk of the parked set goes on (`wakeParked`): after a seq, as one walk. */
export interface WakeCursor {
  afterSeq: number;
  /** The walk's token (wake.lua: the walk that reads the whole set learns its cheapest row). */
  walk: string;
}

/** What one `feedWindow` call fed: each row with the submit lineage its job takes. */
export interface FeedResult {
  fed: { rowId: string; resubmit: number }[];
  /** The batch's submit priority (enqueue --priority), for the fed rows' jobs; absent: none kept. */
  priority?: number;
  /** True when the window is still short and rows are held: ask again. */
  more: boolean;
}

/**
 * The reply of wake.lua and feed.lua, {flag, priority ('' = none), rowId, lineage, ...}: the flag
 * (wake: stop; feed: more), the batch's submit priority, and each row with its job's lineage.
 */
export function parseRowsReply(reply: readonly (string | number)[]): {
  flag: boolean;
  priority: number | undefined;
  rows: { rowId: string; resubmit: number }[];
} {
  const rows: { rowId: string; resubmit: number }[] = [];
  for (let i = 2; i + 1 < reply.length; i += 2)
    rows.push({ rowId: String(reply[i]), resubmit: Number(reply[i + 1]) });
  const priority = reply[1] === "" || reply[1] === undefined ? undefined : Number(reply[1]);
  return { flag: reply[0] === 1, priority, rows };
}
