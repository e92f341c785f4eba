/**
 * The producer: manifest rows -> ids -> ledger -> submit jobs, with dry run and cost estimate.
 *
 *   const summary = await enqueue({ file, batch, sets, strict }, { connect, out, progress, clock });
 *   process.exitCode = summary.exitCode;
 */

export { ChunkWriter, type ChunkWriterOptions } from "./chunk-writer.js";
export { enqueue } from "./enqueue.js";
export { EnqueueInterruptedError, isEnqueueInterruptedError } from "./errors.js";
export {
  DEFAULT_PRIORITY,
  DRY_RUN_REDIS_TIMEOUT_MS,
  ENQUEUE_CHUNK,
  MAX_PRIORITY,
  MAX_REPORTED_ERRORS,
} from "./limits.js";
export { parseBudgetCredits, parsePriority, resolveOptions } from "./options.js";
export { type QueuedRow, RowSpool } from "./row-spool.js";
export { guessFormat, spoolToTempFile } from "./spool.js";
export { formatSummaryText, summaryJson } from "./summary-text.js";
export type {
  EnqueueDeps,
  EnqueueOptions,
  EnqueueSummary,
  Output,
  ProducerBackend,
  ProducerLedger,
} from "./types.js";
