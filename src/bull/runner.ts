import { DelayedError, type Job, UnrecoverableError, Worker } from "bullmq";
import type { Logger } from "../core/logger.js";
import type { Ledger } from "../ledger/index.js";
import type { RedisClient as Redis } from "../redis/script.js";
import { bullPrefix, jobDataOf, type Stage } from "../worker/jobs.js";
import type { StageDeps } from "../worker/ports.js";
import {
  JobLostError,
  type RowJob,
  type StageDefinition,
  StageError,
  type StageResult,
} from "../worker/stage.js";
import { STAGE_DEFINITIONS } from "../worker/stages.js";
import { closeWorkers } from "./close-workers.js";
import { FETCH_WATCH, type ReadyCounts, readyCounts, type Starved, watchFetches } from "./fetch-watchdog.js";
import { afterParked, recordGiveUp } from "./job-ends.js";
import { stageBackoff } from "./job-options.js";
import { stageJobOf } from "./stage-job.js";

export interface StageWorkerOptions {
  connection: Redis;
  queuePrefix: string;
  deps: StageDeps;
  ledger: Ledger;
  log: Logger;
  stages: readonly Stage[];
  concurrency: Record<Stage, number>;
  /** KIE_LOCK_MS: a killed worker's jobs return after about this long. */
  lockMs: number;
  /**
   * A stage worker that takes no job for `stallMs` while its queue has jobs ready and it has a
   * free slot is replaced (fetch-watchdog.ts); each queue is counted every `everyMs`.
   * @defaultValue `FETCH_WATCH` on a Redis Cluster (the stall follows a failover); off on a single
   * Redis, where it would only cost a count per stage every few seconds.
   */
  fetchWatch?: { stallMs: number; everyMs: number } | false;
  /** Told of each stage worker replaced by the fetch watchdog (a metric). */
  onRestart?: (stage: Stage) => void;
}

/** Default concurrency per stage: submits are bounded by the account's rate, not by slots. */
export const DEFAULT_CONCURRENCY: Record<Stage, number> = { submit: 4, poll: 16, archive: 4 };
/** After an abort, a released job comes back this soon. */
const RELEASE_DELAY_MS = 1_000;
/**
 * Stalls a job may survive. BullMQ's default (1) fails a job on its second stall whatever its
 * attempts: a poll job lives for minutes, so two crashes would lose its row. No crash fails a row.
 */
const MAX_STALLED = 1_000_000;
/** Seconds a failed job is kept for inspection (bull-board). */
const FAILED_JOB_AGE_S = 7 * 86_400;
/** A job's return value when its stage answered `parked`. */
const PARKED = "parked";

/**
 * The BullMQ edge: turns stage results into `moveToDelayed` + `DelayedError`, retryable stage
 * errors into BullMQ retries, terminal ones into `UnrecoverableError`, and an abort (shutdown)
 * into a job released back to delayed.
 */
export class StageWorkers {
  readonly workers: Worker[] = [];
  private closing: Promise<void> | undefined;
  /** Ledger writes of the "failed" handler still running: a closing process waits for them. */
  private readonly pending = new Set<Promise<void>>();
  /** Per worker: the jobs it runs now and when it last took one (the fetch watchdog's input). */
  private readonly fetches = new Map<Worker, { inHand: number; lastTakenAt: number }>();
  /** Workers replaced by the fetch watchdog, each closing once the jobs it holds are done. */
  private readonly retiring = new Map<Worker, Promise<void>>();
  private readonly counts: ReadyCounts;
  private readonly watch: { stop(): void } | undefined;

  constructor(private readonly options: StageWorkerOptions) {
    for (const stage of options.stages) this.workers.push(this.workerOf(stage));
    this.counts = readyCounts(options.connection, options.queuePrefix);
    const watch = options.fetchWatch ?? (options.connection.isCluster ? FETCH_WATCH : false);
    if (watch) {
      this.watch = watchFetches({
        ...watch,
        stages: options.stages,
        concurrency: options.concurrency,
        ready: (stage) => this.counts.ready(stage),
        fetchOf: (stage) => {
          const worker = this.workers.find((w) => w.name === stage);
          return (worker && this.fetches.get(worker)) ?? { inHand: 0, lastTakenAt: Date.now() };
        },
        restart: (stage, starved) => this.restart(stage, starved),
      });
    }
  }

  /**
   * Replaces the stage's worker with a new one (a new blocking connection). The old one stops
   * fetching and closes once the jobs it holds are done, renewing their locks meanwhile, so no
   * job runs in two places (the new worker cannot take a locked job).
   */
  private restart(stage: Stage, starved: Starved): void {
    const index = this.workers.findIndex((w) => w.name === stage);
    const old = this.workers[index];
    if (this.closing || !old) return;
    const { starvedMs, ready, inHand, concurrency } = starved;
    this.options.log.warn(
      { stage, starvedMs, ready, inHand, concurrency },
      `${stage} worker took no job for ${starvedMs} ms while its queue had ${ready} jobs ready and it was running ${inHand} of ${concurrency} (a free slot); replacing it`,
    );
    this.options.onRestart?.(stage);
    this.workers[index] = this.workerOf(stage);
    this.fetches.delete(old);
    const closed = old
      .close()
      .catch((err) => this.options.log.warn({ err, stage }, "closing a replaced stage worker"))
      .finally(() => this.retiring.delete(old));
    this.retiring.set(old, closed);
  }

  /** The stage's definition, typed with its own job data (`S` ties the name to the value). */
  private workerOf<S extends Stage>(stage: S): Worker {
    return this.createWorker(STAGE_DEFINITIONS[stage]);
  }

  private createWorker<T extends RowJob>(definition: StageDefinition<T>): Worker {
    const { options } = this;
    const { name: stage, run, schema } = definition;
    const fetch = { inHand: 0, lastTakenAt: Date.now() };
    const runJob = async (job: Job, token?: string, signal?: AbortSignal): Promise<unknown> => {
      const data = schema.parse(jobDataOf(job.id, job.data));
      const { stageJob, logOf, save } = stageJobOf(job, data, { stage, token, signal, options });
      const abort = stageJob.signal;
      let result: StageResult<T>;
      try {
        result = await run(stageJob, options.deps);
      } catch (error) {
        if (error instanceof JobLostError) {
          // Another worker runs the job now; completing or failing it here would fight that one.
          logOf().warn(error.message);
          throw new DelayedError();
        }
        if (abort.aborted) {
          // Shutting down: hand the job back so another worker (or this one, restarted) goes on.
          await job.moveToDelayed(Date.now() + RELEASE_DELAY_MS, token);
          throw new DelayedError();
        }
        if (error instanceof StageError && !error.retryable) throw new UnrecoverableError(error.message);
        logOf().warn({ err: error, attempt: job.attemptsMade + 1 }, "stage failed; BullMQ retries it");
        throw error;
      }
      if (result.kind === "delay") {
        if (!(await save(result.data))) {
          // Another worker holds the job now: its data (a submit's mark) is that worker's to write.
          logOf().warn(`job ${job.id} went to another worker: its delay is not stored here`);
          throw new DelayedError();
        }
        await job.moveToDelayed(Date.now() + result.ms, token);
        throw new DelayedError();
      }
      return result.kind === "parked" ? PARKED : undefined;
    };
    const worker = new Worker(
      stage,
      async (job: Job, token?: string, signal?: AbortSignal) => {
        fetch.inHand++;
        fetch.lastTakenAt = Date.now();
        try {
          return await runJob(job, token, signal);
        } finally {
          fetch.inHand--;
        }
      },
      {
        connection: options.connection,
        prefix: bullPrefix(options.queuePrefix, stage),
        concurrency: options.concurrency[stage],
        lockDuration: options.lockMs,
        stalledInterval: Math.max(1_000, Math.min(options.lockMs, 30_000)),
        maxStalledCount: MAX_STALLED,
        // What happens to a finished job is decided here, not written into every job (queues.ts):
        // removed on completion (the ledger is the record), failed ones kept a week to inspect.
        removeOnComplete: { count: 0 },
        removeOnFail: { age: FAILED_JOB_AGE_S },
        // The backoff a job names (`{ type: "e2" }`, job-options.ts); built-in names stay BullMQ's.
        settings: { backoffStrategy: stageBackoff },
        autorun: true,
      },
    );
    worker.on("completed", (job, returned) => {
      // Parked jobs are removed on completion; only then may a wake's add of the same id land.
      if (returned !== PARKED || !definition.onParked) return;
      const parsed = definition.schema.safeParse(jobDataOf(job.id, job.data));
      if (parsed.success) this.track(this.afterParked(definition, parsed.data));
    });
    worker.on("failed", (job, error) => {
      if (!job) return;
      const final = error.name === "UnrecoverableError" || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (!final) return;
      this.track(this.recordGiveUp(definition, job, error));
    });
    worker.on("error", (error) => {
      // A lock renewal that races a job's own move to delayed fails harmlessly; a lock truly lost
      // means another worker may run the job, which every stage tolerates (submit checks first).
      if (/could not renew lock/i.test(error.message)) {
        options.log.warn(
          { err: error, stage },
          "job lock not renewed (the job moved on, or went to another worker)",
        );
        return;
      }
      options.log.error({ err: error, stage }, "worker error");
    });
    this.fetches.set(worker, fetch);
    return worker;
  }

  private recordGiveUp<T extends RowJob>(definition: StageDefinition<T>, job: Job, error: Error) {
    return recordGiveUp(definition, job, error, this.options);
  }

  private afterParked<T extends RowJob>(definition: StageDefinition<T>, data: T) {
    return afterParked(definition, data, this.options);
  }

  /** Keeps a handler's work so `close()` (and `settled()`) wait for it. */
  private track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Resolves once every give-up the workers have seen so far is recorded in the ledger. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  async waitUntilReady(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
  }

  /**
   * Stops taking jobs, aborts those in hand (each stage releases its job), and closes. A hung
   * processor cannot hold this past `deadlineMs`: then the workers are closed by force.
   */
  close(deadlineMs = 25_000): Promise<void> {
    this.closing ??= (async () => {
      this.watch?.stop();
      await closeWorkers(this.workers, this.retiring, deadlineMs, this.options.log);
      await this.counts.close();
      await this.settled();
    })();
    return this.closing;
  }

  /** `close()` with its default deadline, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
