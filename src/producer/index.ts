/**
 * The producer: manifest rows -> ids -> ledger -> submit jobs, with dry run and cost estimate.
 *
 *   const summary = await enqueue({ file, batch, sets, strict }, { connect, out, progress, clock });
 *   process.exitCode = summary.exitCode;
 */

export { enqueue } from "./enqueue.js";
export {
  EnqueueInterruptedError,
  isEnqueueInterruptedError,
  isStrictCheckError,
  StrictCheckError,
} from "./errors.js";
export {
  DEFAULT_PRIORITY,
  ENQUEUE_CHUNK,
  ENQUEUE_V8_FLAGS,
} from "./limits.js";
export { parseBudgetCredits, parsePriority, resolveOptions } from "./options.js";

export { guessFormat } from "./spool.js";
export { formatSummaryText, summaryJson } from "./summary-text.js";
export { removeTempFoldersNow } from "./temp-folders.js";
export type {
  EnqueueDeps,
  EnqueueOptions,
  EnqueueSummary,
} from "./types.js";
