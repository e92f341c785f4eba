/*
 * What the budget and window scripts answer (reserve.lua, settle.lua, wake.lua, feed.lua), as their
 * callers in money.ts, parked.ts and feed.ts return it. A leaf: types.ts re-exports these.
 */

/**
 * `over-budget`: nothing reserved; the row is marked waiting and parked (its job may end: a wake
 * gives it a new one). `purging`: nothing reserved; `purge` is deleting the batch, so nothing of
 * it is created (and paid for) any more: the job ends.
 */
export type ReserveOutcome = "reserved" | "over-budget" | "no-budget" | "purging";

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
