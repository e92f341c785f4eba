import { z } from "zod";

/**
 * The three stage queues and their job payloads. Payloads stay small: the ledger row holds the
 * prompt and parameters, so a job only says which row and how far it got.
 */
export const STAGES = ["submit", "poll", "archive"] as const;
export type Stage = (typeof STAGES)[number];

/**
 * BullMQ prefix of one stage's queue in a deployment, `{<prefix>:<stage>}`: a hash tag of its own,
 * as BullMQ's cluster guide asks, so each queue's keys share one Cluster slot (its scripts touch
 * several) and the three queues may sit on different masters.
 */
export function bullPrefix(queuePrefix: string, stage: Stage): string {
  return `{${queuePrefix}:${stage}}`;
}

/**
 * One job key per row, `<batch>/<rowId>`, used as the jobId in every stage, so enqueuing twice
 * never makes a second job. A resubmit of a failed generation gets its own lineage `/r<n>`,
 * because BullMQ hands back the existing job for a taken id.
 */
export function jobKey(batch: string, rowId: string, resubmit = 0): string {
  return resubmit > 0 ? `${batch}/${rowId}/r${resubmit}` : `${batch}/${rowId}`;
}

/**
 * What every job key of `batch` starts with, resubmit lineages included: `jobKey` with an empty
 * row id, so the key's shape stays written once.
 */
export function batchKeyPrefix(batch: string): string {
  return jobKey(batch, "");
}

/** A job key's parts, as `jobKey` takes them. */
export interface JobKeyParts {
  batch: string;
  rowId: string;
  resubmit: number;
}

export function parseJobKey(key: string): JobKeyParts | undefined {
  // Names as the ledger takes them (`checkName`: at most 128 characters each).
  const match = /^([A-Za-z0-9._-]{1,128})\/([A-Za-z0-9._-]{1,128})(?:\/r(\d{1,9}))?$/.exec(key);
  if (!match) return undefined;
  return { batch: match[1]!, rowId: match[2]!, resubmit: match[3] ? Number(match[3]) : 0 };
}

export const submitJobSchema = z.object({
  batch: z.string(),
  rowId: z.string(),
  /** Which resubmit this is (0 for the first submit). */
  resubmit: z.number().int().min(0).default(0),
  /**
   * Epoch ms, set just before a create request goes out and cleared once its answer is handled.
   * A run that finds it set follows a worker that died with a create on the wire: KIE may have
   * made a task, so the row is counted uncertain before it is submitted again.
   */
  creating: z.number().optional(),
});
export type SubmitJob = z.infer<typeof submitJobSchema>;

export const pollJobSchema = z.object({
  batch: z.string(),
  rowId: z.string(),
  taskId: z.string(),
  resubmit: z.number().int().min(0).default(0),
  /** Epoch ms of the submit, for the record-lag grace and the max-wait deadline. */
  submittedAt: z.number(),
  /** Status checks made so far (drives the backoff). */
  checks: z.number().int().min(0).default(0),
  /**
   * Set by `kie-batch retry` when it polls a failed row's task again: if that task failed (or is
   * unknown), resubmit even past KIE_MAX_RESUBMITS, since the operator asked for the row.
   * Absent means false: optional rather than `.default(false)`, so code that builds poll jobs
   * without it (the submit stage) still type-checks.
   */
  resubmitOnFailure: z.boolean().optional(),
  /**
   * Set while KIE answers "recordInfo is null" for the task: when a poller first saw that (its own
   * clock) and the delays this job has waited since. The record-lag grace is measured on these,
   * never against `submittedAt`, which the submitting machine's clock wrote.
   */
  notFound: z.object({ since: z.number(), waitedMs: z.number().min(0) }).optional(),
  /**
   * `notFound`'s counterpart for a row already archiving (poll-archiving.ts): its own, so a mark
   * left from before the task succeeded never shortens the grace of a resume.
   */
  archiveNotFound: z.object({ since: z.number(), waitedMs: z.number().min(0) }).optional(),
  /** Epoch ms when a worker first found it lacks the API key of the task (worker/task-key.ts). */
  keyMissingSince: z.number().optional(),
  /**
   * The key (short hash) the task was created with, as its row records it: for recording the task
   * again should a Redis failover lose the row's record (worker/poll-record.ts). Absent: none.
   */
  taskKey: z.string().optional(),
  /**
   * Set once the row failed at KIE_MAX_WAIT with its task still unsettled: the late checks made
   * since (worker/poll-late.ts). The job then only asks whether the task finished after all.
   */
  late: z.number().int().min(0).optional(),
});
export type PollJob = z.infer<typeof pollJobSchema>;

export const archiveJobSchema = z.object({
  batch: z.string(),
  rowId: z.string(),
  taskId: z.string(),
  imageUrls: z.array(z.string()).min(1),
  /** Provider completion time (epoch ms): files expire 14 days later, perhaps 24 h. */
  completedAt: z.number(),
  creditsConsumed: z.number().optional(),
  /** Archive tries so far (drives the backoff; archive retries last as long as the image lives). */
  tries: z.number().int().min(0).default(0),
  /** Of those, tries the file host refused through a fresh URL too (archive.ts REFUSED_TRIES). */
  refusals: z.number().int().min(0).optional(),
  /** Since when (epoch ms) this job has waited for a worker with its task's API key (archive.ts). */
  keyMissingSince: z.number().optional(),
});
export type ArchiveJob = z.infer<typeof archiveJobSchema>;

/**
 * A job's data as stored in BullMQ. A submit job stores only `creating` (when set): its batch, row
 * and resubmit are its job id (`jobKey`), so a queued row's job is `{}` and its hash stays in
 * Redis's compact encoding (bull/job-options.ts). Poll and archive jobs live only while their row
 * is in flight and are stored whole.
 */
export function storedJobData(stage: Stage, data: object): object {
  if (stage !== "submit") return data;
  const { creating } = data as Partial<SubmitJob>;
  return creating === undefined ? {} : { creating };
}

/**
 * A job's data as a stage reads it (before its schema): the parts of its key under what it
 * stores. Jobs stored whole (poll, archive, and submit jobs written before the compact form)
 * carry the same parts themselves.
 */
export function jobDataOf(id: string | undefined, stored: unknown): unknown {
  const parts = id === undefined ? undefined : parseJobKey(id);
  if (parts === undefined || stored === null || typeof stored !== "object") return stored;
  return { ...parts, ...stored };
}

/** Each stage's job data, by queue name. */
export interface StageJobData {
  submit: SubmitJob;
  poll: PollJob;
  archive: ArchiveJob;
}
