import { retryDelay } from "../core/backoff.js";
import type { Clock } from "../core/clock.js";
import { isKieError } from "../kie/errors.js";
import type { KieApi, TaskRecord } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { RowRecord } from "../ledger/types.js";
import type { PollJob } from "./jobs.js";
import { recordLagMark, withoutNotFound } from "./poll-deadlines.js";
import type { FleetPort, StageQueues, WorkerSettings } from "./ports.js";
import { delay, done, type StageJob, type StageResult } from "./stage.js";

/** What resuming an archive uses: a subset of the poll stage's ports. */
export interface ResumeArchiveDeps {
  kie: Pick<KieApi, "getTask">;
  fleet: Pick<FleetPort, "pollSlot">;
  queues: Pick<StageQueues, "addArchive">;
  ledger: Pick<Ledger, "transition">;
  clock: Pick<Clock, "now">;
  settings: Pick<WorkerSettings, "recordLagGraceMs" | "fileLifetimeMs">;
}

/**
 * A poll job that finds its row already in `archiving` for its own task. Either an earlier run
 * moved the row and died before it added the archive job, or the reconciler found the row without
 * one and sent this poll: either way the archive job may be missing, and nothing else would add
 * it (invariant 1: every row ends). The task's URLs are not in the ledger, so ask KIE once more
 * and add the archive job; its id is the row's job key, so an archive job already there is kept
 * as it is and this costs one status call.
 *
 * When KIE can no longer give the images (it forgot the task, or answers without them), nothing
 * can archive the row: it fails with KIE's answer, so it ends instead of waiting in `archiving`
 * for a reconciler that would send this poll again and again. KIE's "no such task" gets the same
 * record-lag grace as a new task's (KIE_RECORD_LAG_GRACE) before it is believed; an answer
 * without an outcome (a 5xx, a timeout, a fleet condition, a task still generating) is asked
 * again later, until the task's file lifetime (KIE_FILE_LIFETIME from its completion) is over.
 */
export async function resumeArchive(
  job: StageJob<PollJob>,
  deps: ResumeArchiveDeps,
  row: RowRecord,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  const nextMs = retryDelay(job.data.checks);
  const next = { ...job.data, checks: job.data.checks + 1 };
  /** Past the task's file lifetime its images are gone whatever KIE answers: asking again is pointless. */
  const expired = () =>
    (row.completedAt ?? job.data.submittedAt) + deps.settings.fileLifetimeMs <= deps.clock.now();
  await deps.fleet.pollSlot(job.signal);
  let record: TaskRecord;
  try {
    record = await deps.kie.getTask(taskId, job.signal);
  } catch (error) {
    if (!isKieError(error)) throw error;
    // Checked first: the client marks "no such task" retryable (a new task's record may lag).
    if (error.code === "record_not_found") {
      const notFound = recordLagMark(
        job.data.notFound,
        deps.clock.now(),
        deps.settings.recordLagGraceMs,
        nextMs,
      );
      if (notFound) return delay(nextMs, { ...next, notFound });
    } else if ((error.retryable || error.fleetEffect !== undefined) && !expired()) {
      job.log.warn(
        { code: error.code, taskId },
        "status call failed while resuming an archive; trying again later",
      );
      return delay(nextMs, next);
    }
    const late =
      expired() && error.code !== "record_not_found" ? " past its file lifetime (KIE_FILE_LIFETIME)" : "";
    return cannotArchive(job, deps, `status of task ${taskId} failed${late}: ${error.message}`);
  }
  if (record.status === "generating" && !expired()) {
    job.log.warn(
      { taskId },
      "row is archiving but KIE says its task is still generating; asking again later",
    );
    return delay(nextMs, withoutNotFound(next));
  }
  if (record.status !== "success" || record.imageUrls.length === 0) {
    const answer =
      record.status === "success"
        ? "succeeded without an image URL"
        : record.status === "generating"
          ? "still generating past its file lifetime (KIE_FILE_LIFETIME)"
          : `failed (${record.failCode ?? "failed"}): ${record.failMessage ?? "generation failed"}`;
    return cannotArchive(job, deps, `task ${taskId} ${answer} when asked again for its images`);
  }
  await deps.queues.addArchive({
    batch,
    rowId,
    taskId,
    imageUrls: record.imageUrls,
    completedAt: row.completedAt ?? record.completedAt ?? deps.clock.now(),
    ...(record.creditsConsumed === undefined ? {} : { creditsConsumed: record.creditsConsumed }),
    tries: 0,
  });
  job.log.info({ taskId }, "row was archiving without a sure archive job: archive job added");
  return done;
}

/** The row fails (it stays paid: its credits were settled before it moved to archiving). */
async function cannotArchive(
  job: StageJob<PollJob>,
  deps: ResumeArchiveDeps,
  reason: string,
): Promise<StageResult<PollJob>> {
  const { batch, rowId } = job.data;
  const moved = await deps.ledger.transition(batch, rowId, {
    from: ["archiving"],
    to: "failed",
    set: { error: `archive failed: ${reason}` },
  });
  if (moved.ok) job.log.warn({ reason }, "archive failed: KIE no longer gives the task's images; row failed");
  return done;
}
