/**
 * The producer's shapes: what `enqueue` is asked to do, what it needs (as small ports, so tests
 * hand it object literals or a real Redis alike), and what it reports.
 */

import type { Clock } from "../core/clock.js";
import type { ApiFlavor, PriceTable } from "../kie/index.js";
import type { Ledger } from "../ledger/index.js";
import type { ManifestFormat, RowError } from "../manifest/index.js";

/** Where the producer prints: stdout for the summary, stderr for the progress line. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** What to enqueue, as validated numbers and names (the CLI turns flags into this). */
export interface EnqueueOptions {
  /** The manifest's path, or "-" for stdin (then `batch` is required). */
  file: string;
  /** Batch name. @defaultValue the file's base name without extension (`defaultBatchName`) */
  batch?: string;
  /** `--format`. @defaultValue from the extension; for stdin, guessed from the first bytes */
  format?: string;
  /** `--set key=value` arguments, as given. @defaultValue [] */
  sets?: readonly string[];
  /** Validate and estimate only: nothing is written to Redis, which need not be running. @defaultValue false */
  dryRun?: boolean;
  /** Enqueue nothing unless every row is valid. @defaultValue false */
  strict?: boolean;
  /** Credit budget of the batch (replaces any earlier one). @defaultValue unchanged */
  budget?: number;
  /**
   * BullMQ priority of the batch's submit jobs, 1 (first) to 2,097,151 (last).
   * @defaultValue DEFAULT_PRIORITY
   */
  priority?: number;
  /** Print the summary as one JSON object instead of text. @defaultValue false */
  json?: boolean;
  /**
   * `--no-reuse`: the batch's rows are always created, never copied from an earlier row's images
   * (stored in the batch's meta, for every worker). @defaultValue false
   */
  noReuse?: boolean;
  /** Folders besides the manifest's own that local input images (`image_path`) may come from. @defaultValue [] */
  allowPaths?: readonly string[];
  /** The deployment's KIE API flavour: rows of the market-only models are refused on `qwen`. @defaultValue not checked */
  apiFlavor?: ApiFlavor;
  /** Credits per model and acceleration for the estimate and the budget. @defaultValue DEFAULT_PRICES */
  prices?: PriceTable;
}

/** The ledger calls the producer makes. */
export type ProducerLedger = Pick<Ledger, "addRows" | "setBudget" | "getBatch" | "feedWindow" | "getRows">;

/** Redis, as the producer sees it. Built only after the file has been opened. */
export interface ProducerBackend {
  readonly ledger: ProducerLedger;
  /**
   * Adds one submit job per row, jobId `<batch>/<rowId>`. A job whose id is taken is left as it
   * is (BullMQ returns the existing job), which is what heals a crash between ledger and queue.
   */
  addSubmitJobs(batch: string, rowIds: readonly string[], priority: number): Promise<void>;
  /**
   * Gives a window-managed batch's next held rows (`addRows` outcome `held`) their submit jobs, as
   * many as fill its submit window (KIE_SUBMIT_WINDOW), at the priority kept on the batch; returns
   * how many. Workers feed the rest as rows leave `queued`.
   */
  feedSubmitWindow(batch: string): Promise<number>;
  /** For each id, whether the batch's ledger already holds that row. Reads only. */
  rowsExist(batch: string, rowIds: readonly string[]): Promise<boolean[]>;
  /**
   * For each request hash, whether the result index holds it (a dry run's count of rows that would
   * be reused). Reads only. Absent when reuse is off for the deployment (KIE_REUSE=off).
   */
  resultsExist?(hashes: readonly string[]): Promise<boolean[]>;
  /** Closes what this backend opened. */
  close(): Promise<void>;
}

export interface EnqueueDeps {
  /**
   * Opens Redis and the parts built on it. Rejects (with `RedisUnavailableError` in the CLI) when
   * Redis does not answer within `timeoutMs`; must write nothing to Redis by itself.
   */
  connect(options: { timeoutMs?: number }): Promise<ProducerBackend>;
  /** The summary goes here. */
  out: Output;
  /** The progress line goes here, and only when it is a TTY. @defaultValue none */
  progress?: Output;
  clock: Pick<Clock, "now">;
  /**
   * Warnings about the options go here, after the summary (a `--set` parameter that some or all
   * rows' models do not take). @defaultValue process.stderr
   */
  stderr?: Output;
  /** Read when `file` is "-". @defaultValue process.stdin */
  stdin?: NodeJS.ReadableStream;
  /** Where stdin is spooled. @defaultValue os.tmpdir() */
  tmpDir?: string;
}

/** What one `enqueue` did (or, with `dryRun`, would do). */
export interface EnqueueSummary {
  batch: string;
  /** The file as named in messages ("-" for stdin). */
  file: string;
  format: ManifestFormat;
  dryRun: boolean;
  strict: boolean;
  /** Every row read, valid or not. */
  total: number;
  valid: number;
  /** Rows recorded in the ledger and queued by this run. Always 0 for a dry run. */
  enqueued: number;
  /** Valid rows not enqueued because the batch already holds their id (from this file or before). */
  duplicates: number;
  /**
   * Rows whose given id the batch already holds for another prompt or other parameters (from
   * this file or before): not added, each listed among the errors (field `id`). Counted in
   * `invalidRows`. A dry run finds them as the enqueue would (in the file, and in the batch).
   */
  idConflicts: number;
  /**
   * Of `duplicates` (a dry run: of `repeatedInFile`), rows without an `id`: named by prompt and
   * parameters, so identical rows are one.
   */
  duplicatesWithoutId: number;
  /**
   * Dry run only: valid rows whose id an earlier row of the file took, asking the same (the
   * enqueue would count them among its duplicates; left out of `estimatedCredits`).
   */
  repeatedInFile?: number;
  /** Rows with at least one error. */
  invalidRows: number;
  /** The first `MAX_REPORTED_ERRORS` row errors, in file order. */
  errors: RowError[];
  /** Row errors beyond those listed. */
  moreErrors: number;
  /** Distinct warnings (a misspelt column is warned about once, not once per row). */
  warnings: string[];
  /**
   * Upper-bound credits of the rows this run enqueues (a dry run: would enqueue; rows repeated
   * within the file are left out, and rows already in the batch when Redis could be asked).
   */
  estimatedCredits: number;
  /** Dry run only: rows the batch already holds, or undefined when Redis could not be asked. */
  alreadyInBatch?: number;
  /**
   * Dry run only: new rows whose request the result index holds (same model, prompt, parameters
   * and seed as a row archived before): a worker copies that image at 0 credits, so they are left
   * out of `estimatedCredits`. Undefined when not asked (no Redis, KIE_REUSE=off, `--no-reuse`).
   */
  reusable?: number;
  /** Dry run only: why Redis was not asked. */
  redisNote?: string;
  /** The batch's rows and estimate after this run, when Redis was asked. */
  batchTotal?: number;
  batchEstimatedCredits?: number;
  budget?: number;
  /** True when `budget` was given but there was no batch to set it on (no valid row). */
  budgetNotSet?: boolean;
  priority: number;
  /** Nothing was enqueued because `strict` found invalid rows. */
  strictRejected: boolean;
  elapsedMs: number;
  /** 0 when at least one row is valid, else 2 (and 2 whenever `strict` rejected the file). */
  exitCode: 0 | 2;
}
