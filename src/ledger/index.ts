export { batchPurgingError } from "./cancel-mark.js";
export { LedgerError } from "./errors.js";
export { checkName, ledgerKeys } from "./keys.js";
export { createLedger, type Ledger } from "./ledger.js";
export { requestHash } from "./request-hash.js";
export {
  createResultIndex,
  type ResultEntry,
  type ResultIndex,
} from "./result-index.js";
export {
  type AddRowOutcome,
  type AddRowsMeta,
  type BatchSummary,
  INDEXED_STATUSES,
  type IndexedStatus,
  type NewRow,
  type RowRecord,
  STATUSES,
  type Status,
  TERMINAL_STATUSES,
  type WakeCursor,
} from "./types.js";
