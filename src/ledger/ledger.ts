import type { Clock } from "../core/clock.js";
import type { RedisClient } from "../redis/script.js";
import { keepUncertain, type UncertainAttempt } from "./budget.js";
import { batchMarks, markCancelled } from "./cancel-mark.js";
import { batchColumns } from "./columns.js";
import type { LedgerContext } from "./context.js";
import { feedWindow } from "./feed.js";
import { type FreezeOptions, type FreezeProgress, freezeBatch } from "./freeze.js";
import { expireFinished, type HousekeepingProgress, housekeep, persistBatch } from "./housekeeping.js";
import { refuseOldLayout, repairBatchIndex } from "./index-repair.js";
import { ledgerKeys } from "./keys.js";
import { releaseEnded, releaseReservation, reserveBudget, setBudget, settleCredits } from "./money.js";
import { wakeParked } from "./parked.js";
import { type ProgressMinute, type ProgressWindow, readProgress } from "./progress.js";
import { finishPurge, purge } from "./purge.js";
import type { RowsOptions, StateEntry, StatePageOptions } from "./read-options.js";
import { readRowStates, readRows } from "./read-rows.js";
import { getBatch, getRow, getRowState, listBatches, oldestUnarchived, rows } from "./reads.js";
import { forgetReservedEnded, type ReservedEndedSlice, reservedEnded } from "./reserved-ended.js";
import { type RowWindow, type RowWindowOptions, rowSeq, rowWindow } from "./row-window.js";
import {
  claimLease,
  countRepairs,
  ensureStateIndex,
  releaseLease,
  stateIndexPages,
  stateIndexStatePages,
  stillInState,
} from "./state-index.js";
import { drainStatePages } from "./state-walk.js";
import { stateWindow } from "./state-window.js";
import type {
  AddRowOutcome,
  AddRowsMeta,
  BatchSummary,
  FeedResult,
  IndexedStatus,
  NewRow,
  ReserveOutcome,
  RowRecord,
  RowState,
  SettleOutcome,
  TransitionInput,
  TransitionResult,
  WakeCursor,
  WakeResult,
} from "./types.js";
import { ADD_ROWS_CHUNK, addRows, transition } from "./writes.js";

export interface LedgerOptions {
  /** The deployment's queue prefix; keys are `{prefix}:ledger:...` and `{prefix:batch}:ledger:...`. @defaultValue "kie" */
  prefix?: string;
  /** Timestamps come from this clock when given. @defaultValue Redis TIME, one clock for the fleet */
  clock?: Pick<Clock, "now">;
  /**
   * KIE_LEDGER_TTL: a batch's keys expire this long after it finishes (set by the transition that
   * finishes it). @defaultValue undefined: never expire
   */
  ttlMs?: number;
  /** Rows per `addRows` script call. @defaultValue 1000 */
  addRowsChunk?: number;
}

/**
 * The durable record of every batch and row. Every multi-key change is one Lua script over keys
 * sharing one hash tag (a batch's own), so it is atomic on a single Redis and on Redis Cluster
 * alike; what spans two tags (the batch index) is written beside the script.
 */
export interface Ledger {
  /** The deployment's key prefix, `{prefix}:ledger` (each batch's keys are `{prefix:batch}:ledger:...`). */
  readonly root: string;
  /** Records rows (creating the batch if needed); one outcome per row, in order. */
  addRows(batch: string, rows: readonly NewRow[], meta?: AddRowsMeta): Promise<AddRowOutcome[]>;
  /** Moves a row and its batch's counters in one atomic step, guarded by `from`. */
  transition(batch: string, rowId: string, input: TransitionInput): Promise<TransitionResult>;
  /** Reserves credits for a row's submit; see `ReserveOutcome`. Throws `row_missing`. */
  reserveBudget(batch: string, rowId: string, credits: number): Promise<ReserveOutcome>;
  /** Turns the row's reservation into `spent`, once per task. Throws `row_missing`. */
  settleCredits(batch: string, rowId: string, spent: number, taskId?: string): Promise<SettleOutcome>;
  /** Drops the row's reservation; returns the credits released. Throws `row_missing`. */
  releaseReservation(batch: string, rowId: string): Promise<number>;
  /**
   * `settleCredits`, also saying whether the batch has rows parked over its budget now, read in
   * the same script (worker/budget-wake.ts wakes them only then, with no read of its own).
   */
  settleAndPeek(
    batch: string,
    rowId: string,
    spent: number,
    taskId?: string,
  ): Promise<{ outcome: SettleOutcome; parked: boolean }>;
  /** `releaseReservation`, also saying whether the batch has parked rows now (as `settleAndPeek`). */
  releaseAndPeek(batch: string, rowId: string): Promise<{ released: number; parked: boolean }>;
  /**
   * A slice of the batch's reserved-ended set (reserved-ended.ts): rows that ended holding a
   * reservation, for the reconciler to look at; about `max`, from `cursor` (default: the start),
   * with the cursor of the next slice (`"0"`: the set's end).
   */
  reservedEnded(batch: string, cursor?: string, max?: number): Promise<ReservedEndedSlice>;
  /** Takes the given rows out of that set when they hold no reservation (or are gone): how many. */
  forgetReservedEnded(batch: string, rowIds: readonly string[]): Promise<number>;
  /** Marks the batch cancelled (`cancelledAt`), or clears the mark; false when there is no such batch. */
  markCancelled(batch: string, cancelled: boolean): Promise<boolean>;
  /** Which of `cancel`'s and `purge`'s marks the batch carries: the submit's last look before a create. */
  batchMarks(batch: string): Promise<{ cancelled: boolean; purging: boolean }>;
  /** `releaseAndPeek` only for a row that has ended (cancelled, failed): a missing row gives 0. */
  releaseEnded(batch: string, rowId: string): Promise<{ released: number; parked: boolean }>;
  /**
   * A create attempt that may have been charged unseen: the row's reservation (else `credits`)
   * becomes spent-uncertain for good, and one uncertain submit is counted. Throws `row_missing`.
   */
  keepUncertain(
    batch: string,
    rowId: string,
    credits: number,
    taskId?: string,
    attempt?: UncertainAttempt,
  ): Promise<number>;
  /** Sets or removes a batch's budget; false when there is no such batch. */
  setBudget(batch: string, credits: number | null): Promise<boolean>;
  /**
   * Wakes the parked rows (over the budget, without a job) of one page (`max`, 200 by default,
   * from the set's start or after `from`) that fit the budget now, in manifest order, each with its
   * reservation made; the caller adds their submit jobs, then asks again from `next` while there is
   * one (parked.ts).
   */
  wakeParked(batch: string, page?: { from?: WakeCursor; max?: number }): Promise<WakeResult>;
  /**
   * Feeds a window-managed batch's submit window: up to `max` held rows (no job yet, by design), in
   * manifest order, as many as refill the window; the caller adds their submit jobs (feed.ts).
   */
  feedWindow(batch: string, max?: number): Promise<FeedResult>;
  getBatch(batch: string): Promise<BatchSummary | undefined>;
  /** Every batch, newest first. */
  listBatches(): Promise<BatchSummary[]>;
  /**
   * Puts back in the batch index every batch that exists without its entry (a write lost between
   * the batch's script and its index entry, in two Cluster slots); returns those batches.
   */
  repairIndex(): Promise<string[]>;
  /** @throws LedgerError `old_layout` when Redis holds batches in the key layout before Cluster */
  refuseOldLayout(): Promise<void>;
  getRow(batch: string, rowId: string): Promise<RowRecord | undefined>;
  /** The row without its body (prompt, params, metadata, images, error): one command; what the poll reads. */
  getRowState(batch: string, rowId: string): Promise<RowState | undefined>;
  /**
   * Rows of one batch by id, aligned with `ids` (undefined: no such row): one pipeline, and each
   * frozen page they live in read and decoded once.
   */
  getRows(batch: string, rowIds: readonly string[]): Promise<(RowRecord | undefined)[]>;
  /** The batch's rows in insertion order. */
  rows(batch: string, options?: RowsOptions): AsyncIterable<RowRecord>;
  /** One window of the batch's rows in manifest order (or reversed) from a seq cursor (row-window.ts). */
  rowWindow(batch: string, options: RowWindowOptions): Promise<RowWindow>;
  /** The row's place in manifest order, or undefined. */
  rowSeq(batch: string, rowId: string): Promise<number | undefined>;
  /**
   * A window of the rows in `statuses`, paged as `rowWindow` pages, found through the state
   * indexes; undefined when they cannot serve it (state-window.ts).
   */
  stateWindow(
    batch: string,
    statuses: readonly IndexedStatus[],
    options: RowWindowOptions,
  ): Promise<RowWindow | undefined>;
  /** Archived rows and settled credits per minute of `window`, oldest first (progress.ts). */
  progress(batch: string, window: ProgressWindow): Promise<ProgressMinute[]>;
  /**
   * The batch's metadata column names in order of first appearance, kept as rows are recorded;
   * undefined for a batch recorded before they were kept (read its rows for them).
   */
  columns(batch: string): Promise<string[] | undefined>;
  /** The row longest in `archiving`, by the provider's completion time. */
  oldestUnarchived(batch: string): Promise<{ rowId: string; completedAt: number } | undefined>;
  /** Makes a finished batch's keys expire `ttlMs` after `finishedAt`; false if it is not finished. */
  expireFinished(batch: string, ttlMs: number): Promise<boolean>;
  /** Removes any expiry from a batch's keys. */
  persistBatch(batch: string): Promise<void>;
  /**
   * Steps the batch's expiry (or its removal) on, a page of rows per step, until done or
   * `keepGoing` (asked between steps) says stop; resumable by any process. See housekeeping.ts.
   */
  housekeep(
    batch: string,
    options?: { keepGoing?: () => Promise<boolean>; onStep?: (progress: HousekeepingProgress) => void },
  ): Promise<HousekeepingProgress>;
  /**
   * Freezes the batch's settled pages of archived rows (their hashes and bodies compressed into
   * one key a page: freeze.ts), from where the last walk stopped, until a page not ready yet or
   * `keepGoing` (asked between pages) says stop; resumable by any process.
   */
  freeze(batch: string, options: FreezeOptions): Promise<FreezeProgress>;
  /**
   * Deletes every ledger key of the batch; returns the number of rows deleted. With `keepMark`,
   * its hash (marked `purging`: nothing is enqueued to it) and index entry stay for `finishPurge`.
   */
  purge(batch: string, options?: { keepMark?: boolean }): Promise<number>;
  /** Deletes a purged batch's hash and index entry: the purge's jobs and slots are gone too. */
  finishPurge(batch: string): Promise<void>;
  /** Builds the state indexes of a batch recorded before they existed (once; then one HGET). */
  ensureStateIndex(batch: string): Promise<void>;
  /** The rows in one indexed state, a page at a time, oldest entry first. */
  statePages(batch: string, status: IndexedStatus, options?: StatePageOptions): AsyncIterable<StateEntry[]>;
  /** `statePages` with each row's state alone (no prompt, params or images read): the reconciler's walk. */
  stateOnlyPages(
    batch: string,
    status: IndexedStatus,
    options?: StatePageOptions,
  ): AsyncIterable<StateEntry<RowState>[]>;
  /**
   * The rows in one indexed state, for a caller that moves them out of it as it goes: finish a
   * page before asking for the next (see state-walk.ts).
   */
  drainState(batch: string, status: IndexedStatus, options?: StatePageOptions): AsyncIterable<StateEntry[]>;
  /** `drainState` reading each row's hash alone (no prompt, params or images): the reconciler's. */
  drainStateOnly(
    batch: string,
    status: IndexedStatus,
    options?: StatePageOptions,
  ): AsyncIterable<StateEntry<RowState>[]>;
  /** Per entry: still in `status` since `enteredAt` (not moved on, not re-entered). */
  stillInState(
    batch: string,
    status: IndexedStatus,
    entries: readonly { id: string; enteredAt: number }[],
  ): Promise<boolean[]>;
  /** Adds to the batch's `repaired` count (rows the reconciler gave a job); false when it is gone. */
  countRepairs(batch: string, count: number): Promise<boolean>;
  /** Takes or renews the fleet-wide lease `name` for `owner`; true while `owner` holds it. */
  claimLease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Lets the lease `name` go if `owner` holds it (compare and delete); true when it was `owner`'s. */
  releaseLease(name: string, owner: string): Promise<boolean>;
}

/** The ledger over an injected client; the caller owns (and closes) the connection. */
export function createLedger(redis: RedisClient, options: LedgerOptions = {}): Ledger {
  const keys = ledgerKeys(options.prefix ?? "kie");
  const chunk = options.addRowsChunk ?? ADD_ROWS_CHUNK;
  const ctx: LedgerContext = {
    redis,
    keys,
    clock: options.clock,
    ttlMs: options.ttlMs,
  };
  return {
    root: keys.root,
    addRows: (batch, newRows, meta) => addRows(ctx, batch, newRows, meta, chunk),
    transition: (batch, rowId, input) => transition(ctx, batch, rowId, input),
    reserveBudget: (batch, rowId, credits) => reserveBudget(ctx, batch, rowId, credits),
    settleCredits: async (batch, rowId, spent, taskId) =>
      (await settleCredits(ctx, batch, rowId, spent, taskId)).outcome,
    releaseReservation: async (batch, rowId) => (await releaseReservation(ctx, batch, rowId)).released,
    settleAndPeek: (batch, rowId, spent, taskId) => settleCredits(ctx, batch, rowId, spent, taskId),
    releaseAndPeek: (batch, rowId) => releaseReservation(ctx, batch, rowId),
    reservedEnded: (batch, cursor, max) => reservedEnded(ctx, batch, cursor, max),
    forgetReservedEnded: (batch, rowIds) => forgetReservedEnded(ctx, batch, rowIds),
    releaseEnded: (batch, rowId) => releaseEnded(ctx, batch, rowId),
    markCancelled: (batch, cancelled) => markCancelled(ctx, batch, cancelled),
    batchMarks: (batch) => batchMarks(ctx, batch),
    keepUncertain: (batch, rowId, credits, taskId, attempt) =>
      keepUncertain(ctx, batch, rowId, credits, taskId, attempt),
    setBudget: (batch, credits) => setBudget(ctx, batch, credits),
    wakeParked: (batch, page) => wakeParked(ctx, batch, page),
    feedWindow: (batch, max) => feedWindow(ctx, batch, max),
    getBatch: (batch) => getBatch(ctx, batch),
    listBatches: () => listBatches(ctx),
    repairIndex: () => repairBatchIndex(ctx),
    refuseOldLayout: () => refuseOldLayout(ctx),
    getRow: (batch, rowId) => getRow(ctx, batch, rowId),
    getRowState: (batch, rowId) => getRowState(ctx, batch, rowId),
    getRows: (batch, rowIds) => readRows(ctx, batch, rowIds),
    rows: (batch, rowsOptions) => rows(ctx, batch, rowsOptions),
    rowWindow: (batch, windowOptions) => rowWindow(ctx, batch, windowOptions),
    rowSeq: (batch, rowId) => rowSeq(ctx, batch, rowId),
    stateWindow: (batch, statuses, windowOptions) => stateWindow(ctx, batch, statuses, windowOptions),
    progress: (batch, window) => readProgress(ctx, batch, window),
    columns: (batch) => batchColumns(ctx, batch),
    oldestUnarchived: (batch) => oldestUnarchived(ctx, batch),
    expireFinished: (batch, ttlMs) => expireFinished(ctx, batch, ttlMs),
    persistBatch: (batch) => persistBatch(ctx, batch),
    housekeep: (batch, hkOptions) => housekeep(ctx, batch, ctx.ttlMs, hkOptions),
    freeze: (batch, freezeOptions) => freezeBatch(ctx, batch, freezeOptions),
    purge: (batch, options) => purge(ctx, batch, options),
    finishPurge: (batch) => finishPurge(ctx, batch),
    ensureStateIndex: (batch) => ensureStateIndex(ctx, batch),
    statePages: (batch, status, pageOptions) => stateIndexPages(ctx, batch, status, pageOptions),
    stateOnlyPages: (batch, status, pageOptions) => stateIndexStatePages(ctx, batch, status, pageOptions),
    // The draining walk reads whole rows for `retry` and `cancel`, each row's hash alone for the reconciler.
    drainState: (batch, status, pageOptions) =>
      drainStatePages(ctx, batch, status, pageOptions ?? {}, readRows),
    drainStateOnly: (batch, status, pageOptions) =>
      drainStatePages(ctx, batch, status, pageOptions ?? {}, readRowStates),
    stillInState: (batch, status, entries) => stillInState(ctx, batch, status, entries),
    countRepairs: (batch, count) => countRepairs(ctx, batch, count),
    claimLease: (name, owner, ttlMs) => claimLease(ctx, name, owner, ttlMs),
    releaseLease: (name, owner) => releaseLease(ctx, name, owner),
  };
}
