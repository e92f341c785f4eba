export { LedgerError, type LedgerErrorCode } from "./errors.js";
export { checkName, type LedgerKeys, ledgerKeys } from "./keys.js";
export { createLedger, type Ledger, type LedgerOptions } from "./ledger.js";
export {
  type AddRowOutcome,
  type AddRowsMeta,
  type ArchivedImage,
  type BatchSummary,
  DEFAULT_LEDGER_TTL_MS,
  INCREMENTABLE,
  INDEXED_STATUSES,
  type Incrementable,
  type IndexedStatus,
  type NewRow,
  type ReserveOutcome,
  type RowRecord,
  type RowsOptions,
  type RowUpdate,
  type SettleOutcome,
  STATUSES,
  type StateEntry,
  type StatePageOptions,
  type Status,
  TASK_MAP_TTL_MS,
  TERMINAL_STATUSES,
  type TransitionInput,
  type TransitionResult,
} from "./types.js";
