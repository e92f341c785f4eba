import { CodedError } from "../core/errors.js";

/**
 * The ledger's one error class; classify by `code`, which survives serialisation. Ledger errors
 * are programming or data errors: retrying the same call cannot help (`retryable` is false).
 */
export class LedgerError extends CodedError<LedgerErrorCode> {
  override readonly name = "LedgerError";
}

export type LedgerErrorCode =
  /** A batch name, row id, task id or prefix that cannot be part of a key. */
  | "invalid_name"
  /** The operation needs a row that is not in the ledger (never added, purged or expired). */
  | "row_missing"
  /** A value the ledger cannot store (a non-finite number, an unknown status or field). */
  | "invalid_value"
  /** Redis holds batches in a key layout this version does not read (index-repair.ts). */
  | "old_layout"
  /** The batch carries `purge`'s mark (a purge runs, or was cut short): nothing is added to it. */
  | "batch_purging"
  /** Rows for a batch that must exist (`AddRowsMeta.existing`) found it deleted (a purge). */
  | "batch_gone";
