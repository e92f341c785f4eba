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
 * Job options per stage: only what a job needs of its own. What happens to a finished job (removed
 * on completion, failed ones kept a week) is the stage worker's option (`runner.ts`), not written
 * into every job: each job hash is smaller by those bytes (issue 10).
 */
function stageJobOptions(stage: Stage, submitAttempts = 8): JobsOptions {
  switch (stage) {
    case "submit":
      return {
        attempts: submitAttempts,
        backoff: { type: "exponential", delay: 2_000, jitter: 0.5 },
      };
    case "poll":
    case "archive":
      // Their processors back off by themselves; BullMQ attempts cover only unexpected errors.
      return { attempts: 10, backoff: { type: "exponential", delay: 5_000, jitter: 0.5 } };
  }
}

/**
 * Entries BullMQ keeps in each queue's event stream (its default is 10,000, about 1 MB per
 * queue). Nothing in kie-batch reads the stream (no QueueEvents; the ledger is the record), so a
 * short tail for inspection is enough. Written into the queue's meta key by every `QueueSet`.
 */
const EVENTS_MAX_LEN = 100;

/** The three stage queues of one deployment (queue prefix). */
export class QueueSet implements StageQueues, PollWaker {
  readonly queues: Record<Stage, Queue>;
  private readonly submitAttempts: number;

  constructor(options: QueueSetOptions) {
    this.submitAttempts = options.submitAttempts ?? 8;
    this.queues = Object.fromEntries(
      STAGES.map((stage) => [
        stage,
        new Queue(stage, {
          connection: options.connection,
          prefix: bullPrefix(options.queuePrefix, stage),
          streams: { events: { maxLen: EVENTS_MAX_LEN } },
        }),
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
