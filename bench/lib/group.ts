import type { BenchContext } from "./context.js";
import type { Figure } from "./figures.js";

/** A group of figures: `--only NAME` runs just it. */
export interface BenchGroup {
  name: string;
  /** One line for `--help`. */
  about: string;
  run(ctx: BenchContext, sizes: Sizes): Promise<Figure[]>;
}

/** Every size a group uses, per mode; `--set name=value` overrides one. */
export interface Sizes {
  /** Rows per prompt length in the bytes group (queued, then archived). */
  bytesRows: number;
  /** Rows of a second, queued-only 300-character batch (no archiving) when above bytesRows: the submit window's share. */
  bytesQueuedRows: number;
  /** Rows through the pipeline (kie-batch and the baseline each). */
  pipelineRows: number;
  /** Worker processes of the pipeline (each side). */
  pipelineWorkers: number;
  /** Rows of the budget-wait batch, and the rows its budget admits. */
  budgetRows: number;
  budgetFits: number;
  /** Seconds of each budget-wait window (idle, then waiting). */
  budgetWindowS: number;
  /** Tasks of the poll-count runs, per mode. */
  pollTasks: number;
  /** Simulator and worker clock factor of the poll-count runs (60: an 8-minute generation takes 8 s). */
  pollTimeScale: number;
  /** Rate-window scale of the create-rate runs (1: 20/10s and 20/4s; 0.5: 20/5s and 20/2s). */
  createWindowScale: number;
  /** Windows measured per create-rate run. */
  createWindows: number;
  /** Rows of the enqueue-rate comparison, and of the enqueue peak-RSS run. */
  enqueueRows: number;
  enqueueBigRows: number;
  /** Rows of the batch the ops group runs retry, cancel, the failure list and results on. */
  opsRows: number;
}

export const FULL: Sizes = {
  bytesRows: 100_000,
  bytesQueuedRows: 100_000,
  pipelineRows: 200_000,
  pipelineWorkers: 2,
  budgetRows: 100_000,
  budgetFits: 20,
  budgetWindowS: 120,
  pollTasks: 200,
  pollTimeScale: 60,
  createWindowScale: 1,
  createWindows: 6,
  enqueueRows: 100_000,
  enqueueBigRows: 1_000_000,
  opsRows: 1_000_000,
};

export const QUICK: Sizes = {
  bytesRows: 1_000,
  bytesQueuedRows: 20_000,
  pipelineRows: 2_000,
  pipelineWorkers: 2,
  budgetRows: 10_000,
  budgetFits: 10,
  budgetWindowS: 35,
  pollTasks: 40,
  pollTimeScale: 60,
  createWindowScale: 0.5,
  createWindows: 4,
  enqueueRows: 100_000, // the goal's size: a smaller file measures start-up more than enqueue
  enqueueBigRows: 100_000,
  opsRows: 50_000,
};
