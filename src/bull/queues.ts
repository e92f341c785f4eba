import { Job, type JobJson, type JobProgress, type JobsOptions, Queue } from "bullmq";
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
  storedJobData,
} from "../worker/jobs.js";
import type { StageQueues } from "../worker/ports.js";
import type { PollWaker } from "../worker/webhook.js";
import { stageJobOptions } from "./job-options.js";
import { jobPresence } from "./job-presence.js";

export interface QueueSetOptions {
  connection: Redis;
  queuePrefix: string;
  /** Attempts of a submit for transient errors (KIE_SUBMIT_ATTEMPTS). @defaultValue 8 */
  submitAttempts?: number;
}

/**
 * Entries BullMQ keeps in each queue's event stream (its default is 10,000, about 1 MB per
 * queue). Nothing in kie-batch reads the stream (no QueueEvents; the ledger is the record), so a
 * short tail for inspection is enough. Written into the queue's meta key by every `QueueSet`.
 */
const EVENTS_MAX_LEN = 100;

/**
 * A job as stored: its options without `jobId`, which BullMQ copies into the options it stores
 * though the id is the hash's own key (and `job.id` once read); nothing reads it from there. With
 * it, a submit job's options outgrow Redis's listpack values (job-options.ts).
 */
// biome-ignore lint/suspicious/noExplicitAny: the same defaults as BullMQ's `Job`, which it replaces.
class StoredJob<D = any, R = any, N extends string = string, P extends JobProgress = JobProgress> extends Job<
  D,
  R,
  N,
  P
> {
  override asJSON(): JobJson {
    const json = super.asJSON();
    const { jobId: _id, ...opts } = json.opts;
    return { ...json, opts };
  }
}

/** A BullMQ queue whose jobs are stored as `StoredJob`s. */
class StageQueue extends Queue {
  protected override get Job(): typeof Job {
    return StoredJob;
  }
}

/** The three stage queues of one deployment (queue prefix). */
export class QueueSet implements StageQueues, PollWaker {
  readonly queues: Record<Stage, Queue>;
  private readonly submitAttempts: number;
  private readonly connection: Redis;

  constructor(options: QueueSetOptions) {
    this.submitAttempts = options.submitAttempts ?? 8;
    this.connection = options.connection;
    this.queues = Object.fromEntries(
      STAGES.map((stage) => [
        stage,
        new StageQueue(stage, {
          connection: options.connection,
          prefix: bullPrefix(options.queuePrefix, stage),
          streams: { events: { maxLen: EVENTS_MAX_LEN } },
        }),
      ]),
    ) as Record<Stage, StageQueue>;
  }

  jobOptions(stage: Stage): JobsOptions {
    return stageJobOptions(stage, this.submitAttempts);
  }

  async addSubmit(data: SubmitJob, options: { priority?: number } = {}): Promise<void> {
    await this.queues.submit.add("submit", storedJobData("submit", data), this.submitOptions(data, options));
  }

  /** `addSubmit` for many jobs in one round trip (BullMQ's addBulk): the same ids and options. */
  async addSubmitBulk(jobs: readonly SubmitJob[], options: { priority?: number } = {}): Promise<void> {
    if (jobs.length === 0) return;
    await this.queues.submit.addBulk(
      jobs.map((data) => ({
        name: "submit",
        data: storedJobData("submit", data),
        opts: this.submitOptions(data, options),
      })),
    );
  }

  private submitOptions(data: SubmitJob, options: { priority?: number }): JobsOptions {
    return {
      ...this.jobOptions("submit"),
      jobId: jobKey(data.batch, data.rowId, data.resubmit),
      ...(options.priority ? { priority: options.priority } : {}),
    };
  }

  async addPoll(data: PollJob, delayMs: number): Promise<void> {
    await this.queues.poll.add("poll", data, {
      ...this.jobOptions("poll"),
      jobId: jobKey(data.batch, data.rowId, data.resubmit),
      delay: Math.max(0, Math.round(delayMs)),
    });
  }

  async addArchive(data: ArchiveJob, options: { delayMs?: number } = {}): Promise<void> {
    const delay = Math.max(0, Math.round(options.delayMs ?? 0));
    await this.queues.archive.add("archive", data, {
      ...this.jobOptions("archive"),
      jobId: jobKey(data.batch, data.rowId),
      ...(delay > 0 ? { delay } : {}),
    });
  }

  async archiveJobLive(batch: string, rowId: string): Promise<boolean> {
    const [presence] = await jobPresence(this.queues.archive, this.connection, [jobKey(batch, rowId)]);
    return presence === "live";
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
