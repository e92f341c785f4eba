import { type JobsOptions, Queue } from "bullmq";
import type { RedisClient as Redis } from "../redis/script.js";
import {
  type ArchiveJob,
  bullPrefix,
  type JobKeyParts,
  jobKey,
  type PollJob,
  STAGES,
  type Stage,
  type SubmitJob,
} from "../worker/jobs.js";
import type { StageQueues } from "../worker/ports.js";
import type { PollWaker } from "../worker/webhook.js";

export interface QueueSetOptions {
  connection: Redis;
  queuePrefix: string;
  /** Attempts of a submit for transient errors (KIE_SUBMIT_ATTEMPTS). @defaultValue 8 */
  submitAttempts?: number;
}

/**
 * Job options per stage. Jobs are removed on completion (the ledger is the record), so Redis
 * does not grow with history; failed ones are kept a week for inspection.
 */
function stageJobOptions(stage: Stage, submitAttempts = 8): JobsOptions {
  const common: JobsOptions = {
    removeOnComplete: true,
    removeOnFail: { age: 7 * 86_400 },
  };
  switch (stage) {
    case "submit":
      return {
        ...common,
        attempts: submitAttempts,
        backoff: { type: "exponential", delay: 2_000, jitter: 0.5 },
      };
    case "poll":
    case "archive":
      // Their processors back off by themselves; BullMQ attempts cover only unexpected errors.
      return { ...common, attempts: 10, backoff: { type: "exponential", delay: 5_000, jitter: 0.5 } };
  }
}

/** The three stage queues of one deployment (queue prefix). */
export class QueueSet implements StageQueues, PollWaker {
  readonly queues: Record<Stage, Queue>;
  private readonly submitAttempts: number;

  constructor(options: QueueSetOptions) {
    this.submitAttempts = options.submitAttempts ?? 8;
    this.queues = Object.fromEntries(
      STAGES.map((stage) => [
        stage,
        new Queue(stage, { connection: options.connection, prefix: bullPrefix(options.queuePrefix, stage) }),
      ]),
    ) as Record<Stage, Queue>;
  }

  jobOptions(stage: Stage): JobsOptions {
    return stageJobOptions(stage, this.submitAttempts);
  }

  async addSubmit(data: SubmitJob, options: { priority?: number } = {}): Promise<void> {
    await this.queues.submit.add("submit", data, {
      ...this.jobOptions("submit"),
      jobId: jobKey(data.batch, data.rowId, data.resubmit),
      ...(options.priority ? { priority: options.priority } : {}),
    });
  }

  async addPoll(data: PollJob, delayMs: number): Promise<void> {
    await this.queues.poll.add("poll", data, {
      ...this.jobOptions("poll"),
      jobId: jobKey(data.batch, data.rowId, data.resubmit),
      delay: Math.max(0, Math.round(delayMs)),
    });
  }

  async addArchive(data: ArchiveJob): Promise<void> {
    await this.queues.archive.add("archive", data, {
      ...this.jobOptions("archive"),
      jobId: jobKey(data.batch, data.rowId),
    });
  }

  /** Promotes the key's poll job if it waits delayed (a callback said its task may be done). */
  async wakePoll(key: JobKeyParts): Promise<boolean> {
    const job = await this.queues.poll.getJob(jobKey(key.batch, key.rowId, key.resubmit));
    if (!job || !(await job.isDelayed())) return false;
    await job.promote().catch(() => undefined); // it may have just left delayed: fine
    return true;
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
