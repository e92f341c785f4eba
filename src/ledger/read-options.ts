import type { LedgerContext } from "./context.js";
import type { RowRecord, RowState, Status } from "./types.js";

/* The options and entries of the ledger's walks over a batch's rows (reads.ts, state-index.ts). */

/**
 * One row of a state index: the row (whole, or its state alone) and when it entered the state
 * (the index's score).
 */
export interface StateEntry<R extends RowState = RowRecord> {
  row: R;
  enteredAt: number;
}

export interface StatePageOptions {
  /** Only rows that entered the state before this epoch ms (exclusive). @defaultValue no limit */
  enteredBefore?: number;
  /** Rows per page. @defaultValue 500 */
  pageSize?: number;
  /**
   * Leave out the rows parked over the budget (queued rows in the batch's parked set) without
   * reading them: a walk that has nothing to do for them costs one ZMSCORE per page, not a read
   * per parked row. @defaultValue false
   */
  skipParked?: boolean;
  /**
   * Leave out, unread, the rows of a window-managed batch that are held (seq >= `fedSeq`, read
   * per page): they have no job by design (one ZMSCORE of the order zset per page). @defaultValue false
   */
  skipHeld?: boolean;
}

export interface RowsOptions {
  /** Only rows in these states. */
  statuses?: readonly Status[];
  /** Rows read per round trip. @defaultValue 500 */
  pageSize?: number;
}

/** How a walk reads a page's rows: whole (`readRows`) or their states alone (`readRowStates`). */
export type PageReader<R extends RowState> = (
  ctx: LedgerContext,
  batch: string,
  ids: readonly string[],
) => Promise<(R | undefined)[]>;

/** A state walk's page size: `options.pageSize`, 500 by default; a positive integer. */
export function walkPageSize(options: StatePageOptions): number {
  const pageSize = options.pageSize ?? 500;
  if (!Number.isInteger(pageSize) || pageSize < 1)
    throw new RangeError("pageSize must be a positive integer");
  return pageSize;
}
