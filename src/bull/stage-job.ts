import type { Job } from "bullmq";
import type { Logger } from "../core/logger.js";
import type { RedisClient } from "../redis/script.js";
import { type Stage, storedJobData } from "../worker/jobs.js";
import type { RowJob, StageJob } from "../worker/stage.js";
import { saveDataIfOwned } from "./job-data.js";

/**
 * A BullMQ job as a stage sees it (`StageJob`): its key, data, abort signal and attempts, a child
 * logger made on first use (most poll runs log nothing, and a child costs its bindings), and the
 * lock-fenced calls a stage makes before a step that must happen once.
 */
export function stageJobOf<T extends RowJob>(
  job: Job,
  data: T,
  context: {
    stage: Stage;
    token: string | undefined;
    signal: AbortSignal | undefined;
    /** The runner's connection, lock duration (KIE_LOCK_MS) and logger. */
    options: { connection: RedisClient; lockMs: number; log: Logger };
  },
): { stageJob: StageJob<T>; logOf: () => Logger; save: (next: T) => Promise<boolean> } {
  const { stage, token, options } = context;
  let child: Logger | undefined;
  const logOf = () =>
    (child ??= options.log.child({ stage, batch: data.batch, row: data.rowId, job: job.id }));
  // Fenced by the lock (job-data.ts): a run whose lock lapsed stores nothing and answers false.
  const save = (next: T) =>
    saveDataIfOwned(options.connection, job, token, options.lockMs, storedJobData(stage, next));
  const stageJob: StageJob<T> = {
    key: job.id ?? "",
    data,
    signal: context.signal ?? new AbortController().signal,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    get log() {
      return logOf();
    },
    // extendLock answers 0 when the lock is gone or another worker's token holds it.
    stillOwned: async () => token === undefined || (await job.extendLock(token, options.lockMs)) === 1,
    saveData: save,
  };
  return { stageJob, logOf, save };
}
