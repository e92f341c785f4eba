import type { ZodType } from "zod";
import { CodedError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Status } from "../ledger/types.js";
import type { Stage } from "./jobs.js";
import type { StageDeps } from "./ports.js";

/**
 * What a stage processor sees of its job, and what it may answer. The BullMQ adapter
 * (`runner.ts`) is the only place that turns these into `moveToDelayed`, `DelayedError` and
 * retries, so the stage logic can be tested with plain objects.
 */
export interface StageJob<T> {
  /** The job key (`<batch>/<rowId>[/r<n>]`). */
  key: string;
  data: T;
  /** Aborted when the worker shuts down: stop waiting and let the adapter release the job. */
  signal: AbortSignal;
  /** Attempts already made before this run (BullMQ's attemptsMade). */
  attemptsMade: number;
  /** Attempts allowed in all. */
  attempts: number;
  log: Logger;
  /**
   * True while this worker still holds the job, which it then holds for another lock period. A
   * job whose lock lapsed (Redis away longer than KIE_LOCK_MS, a stalled event loop) may be run by
   * another worker meanwhile: a stage asks before a step that must happen once (a create).
   * Absent where a stage runs without BullMQ.
   */
  stillOwned?: () => Promise<boolean>;
  /**
   * Stores `data` as the job's data now, to outlive this process, only while this worker still
   * holds the job (which it then holds for another lock period), in one step: true when stored;
   * false, nothing written, once another worker may run it. So a run whose lock lapsed can neither
   * mark a create as its own nor erase the mark of the run that holds the job. Absent without BullMQ.
   */
  saveData?(data: T): Promise<boolean>;
}

/** What every stage's job data names: the ledger row it works on. */
export interface RowJob {
  batch: string;
  rowId: string;
}

/**
 * A stage as one value: its queue, how its job data is checked, what it does, and which row
 * states it answers for. The runner (`bull/runner.ts`) builds one BullMQ worker from each; a new
 * stage is a new value in `STAGE_DEFINITIONS`. `run` may ask for fewer ports than `StageDeps`
 * (each stage narrows them), so its tests pass small object literals.
 */
export interface StageDefinition<T extends RowJob> {
  /** The stage's queue. */
  readonly name: Stage;
  /** Checks a job's data at the edge: BullMQ hands back whatever JSON is stored. */
  readonly schema: ZodType<T>;
  readonly run: (job: StageJob<T>, deps: StageDeps) => Promise<StageResult<T>>;
  /**
   * The row states this stage moves rows out of: while a row is in one of them, its fate is this
   * stage's job, so a job BullMQ gives up on fails the row from exactly these states.
   */
  readonly owns: readonly Status[];
  /**
   * Runs after BullMQ gave up on a job and the runner failed its row from `owns` (or found it
   * cancelled meanwhile): what the row still holds for this stage goes back (the submit stage's
   * reservation). Awaited by the runner.
   */
  readonly onGiveUp?: (data: T, deps: StageDeps) => Promise<void>;
  /**
   * Runs after a job that answered `parked` is completed (and so removed): a row woken between
   * its parking and that removal had its new job refused (the id was still taken), so this adds
   * it. Awaited by the runner; a crash before it leaves the row to the reconciler.
   */
  readonly onParked?: (data: T, deps: StageDeps) => Promise<void>;
}

export type StageResult<T> =
  | { kind: "done" }
  /**
   * Done for now: the row waits in its batch's parked set (over the budget) with no job and no
   * Redis call; a wake adds its job again.
   */
  | { kind: "parked" }
  /** Come back after `ms` with `data` (the job moves to delayed: no worker slot is held meanwhile). */
  | { kind: "delay"; ms: number; data: T };

export const done = { kind: "done" } as const;
export const parked = { kind: "parked" } as const;

export function delay<T>(ms: number, data: T): StageResult<T> {
  return { kind: "delay", ms: Math.max(0, Math.round(ms)), data };
}

/**
 * A failure that BullMQ should retry with its attempts and backoff (retryable) or not at all.
 * Stages record a row's failure in the ledger themselves before they give up; this error only
 * tells the adapter what to do with the job.
 */
export class StageError extends CodedError<"stage_failed"> {
  override readonly name = "StageError";
  constructor(message: string, retryable: boolean, options: { cause?: unknown } = {}) {
    super("stage_failed", message, { retryable, cause: options.cause });
  }
}

/** The job is another worker's now (its lock lapsed): the adapter leaves it alone. */
export class JobLostError extends CodedError<"job_lost"> {
  override readonly name = "JobLostError";
  constructor(message: string) {
    super("job_lost", message);
  }
}

/** True on the last attempt BullMQ will make. */
export function isLastAttempt(job: Pick<StageJob<unknown>, "attemptsMade" | "attempts">): boolean {
  return job.attemptsMade + 1 >= job.attempts;
}

/**
 * A signal that aborts `graceMs` after `signal` does. A submit in flight gets this one: aborting
 * a create whose request is on the wire is what makes a row paid for twice, so shutdown gives it
 * a little time to come back first.
 */
export function graceSignal(signal: AbortSignal, graceMs: number): AbortSignal {
  const controller = new AbortController();
  const onAbort = () => {
    const timer = setTimeout(() => controller.abort(signal.reason), graceMs);
    timer.unref();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return controller.signal;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
