/**
 * Either flavour's status record as the one TaskRecord the rest of the project reads.
 */
import { KieError } from "./errors.js";
import { isJobsRecord, type JobsRecord, type QwenRecord, type StatusRecord } from "./schemas.js";
import type { TaskRecord, TaskStatus } from "./types.js";

/** Below this a numeric timestamp is taken as unix seconds, above as unix ms (1e11 s is year 5138). */
const SECONDS_MS_BOUNDARY = 1e11;
/** "2025-12-07 10:00:00" or "2025-12-07T10:00:00" without a zone: read as UTC, not local time. */
const ZONELESS_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** Epoch ms from unix ms, unix seconds, a numeric string or an ISO date; undefined when unreadable. */
export function toEpochMs(value: string | number | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "number") return fromNumber(value);
  const text = value.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return fromNumber(Number(text));
  const parsed = Date.parse(ZONELESS_DATE_TIME.test(text) ? `${text.replace(" ", "T")}Z` : text);
  return Number.isFinite(parsed) ? parsed : undefined;
}

function fromNumber(value: number): number | undefined {
  if (!Number.isFinite(value) || value <= 0) return undefined;
  return Math.round(value < SECONDS_MS_BOUNDARY ? value * 1000 : value);
}

/**
 * Maps a status record to a TaskRecord. `requestedTaskId` fills in a record that omits its id.
 * Throws `bad_response` (retryable) for a success that names no image: nothing could be archived.
 */
export function normalizeRecord(
  record: StatusRecord,
  requestedTaskId: string,
  endpoint?: string,
): TaskRecord {
  const task = isJobsRecord(record) ? fromJobs(record, requestedTaskId) : fromQwen(record, requestedTaskId);
  if (task.status === "success" && task.imageUrls.length === 0) {
    throw new KieError({
      code: "bad_response",
      retryable: true,
      endpoint,
      message: `${endpoint ?? "status"}: task ${task.taskId} reported success without any result URL`,
    });
  }
  return task;
}

const SUCCESS_FLAG_STATUS: Record<QwenRecord["successFlag"], TaskStatus> = {
  0: "generating",
  1: "success",
  2: "failed",
  3: "failed",
};

function fromQwen(record: QwenRecord, requestedTaskId: string): TaskRecord {
  const status = SUCCESS_FLAG_STATUS[record.successFlag];
  const urls = typeof record.imageUrl === "string" ? [record.imageUrl] : (record.imageUrl ?? []);
  return compact({
    taskId: record.taskId ?? requestedTaskId,
    status,
    imageUrls: status === "success" ? nonEmpty(urls) : [],
    failCode: status === "failed" ? String(record.successFlag) : undefined,
    failMessage: status === "failed" ? (record.errorMessage ?? undefined) : undefined,
    createdAt: toEpochMs(record.createTime),
    completedAt: toEpochMs(record.completeTime),
    creditsConsumed: record.creditsConsumed ?? undefined,
  });
}

const JOB_STATE_STATUS: Record<JobsRecord["state"], TaskStatus> = {
  waiting: "generating",
  queuing: "generating",
  generating: "generating",
  success: "success",
  fail: "failed",
};

function fromJobs(record: JobsRecord, requestedTaskId: string): TaskRecord {
  const status = JOB_STATE_STATUS[record.state];
  const failCode = record.failCode === null || record.failCode === undefined ? "" : String(record.failCode);
  return compact({
    taskId: record.taskId ?? requestedTaskId,
    status,
    imageUrls: status === "success" ? nonEmpty(record.resultJson?.resultUrls ?? []) : [],
    failCode: status === "failed" && failCode !== "" ? failCode : undefined,
    failMessage: status === "failed" ? (record.failMsg ?? undefined) : undefined,
    createdAt: toEpochMs(record.createTime),
    completedAt: toEpochMs(record.completeTime),
    creditsConsumed: record.creditsConsumed ?? undefined,
  });
}

function nonEmpty(urls: string[]): string[] {
  return urls.filter((url) => url.trim() !== "");
}

/** Drops undefined optional fields so records compare and serialise cleanly. */
function compact(task: TaskRecord): TaskRecord {
  const out: TaskRecord = { taskId: task.taskId, status: task.status, imageUrls: task.imageUrls };
  if (task.failCode !== undefined) out.failCode = task.failCode;
  if (task.failMessage !== undefined && task.failMessage !== "") out.failMessage = task.failMessage;
  if (task.createdAt !== undefined) out.createdAt = task.createdAt;
  if (task.completedAt !== undefined) out.completedAt = task.completedAt;
  if (task.creditsConsumed !== undefined) out.creditsConsumed = task.creditsConsumed;
  return out;
}
