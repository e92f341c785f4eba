import { retryDelay } from "../core/backoff.js";
import type { Clock } from "../core/clock.js";
import { isKieError } from "../kie/errors.js";
import type { KieApi, TaskRecord } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { RowState } from "../ledger/types.js";
import { jobKey, type PollJob } from "./jobs.js";
import { recordLagMark } from "./poll-deadlines.js";
import type { FleetPort, StageQueues, WorkerSettings } from "./ports.js";
import { delay, done, type StageJob, type StageResult } from "./stage.js";

/** What resuming an archive uses: a subset of the poll stage's ports. */
export interface ResumeArchiveDeps {
  kie: Pick<KieApi, "getTask">;
  fleet: Pick<FleetPort, "pollSlot" | "releaseInFlight">;
  /** `archiveJobLive`: absent, a row is failed without that check (tests of the rest). */
  queues: Pick<StageQueues, "addArchive"> & Partial<Pick<StageQueues, "archiveJobLive">>;
  ledger: Pick<Ledger, "transition">;
  clock: Pick<Clock, "now">;
  settings: Pick<WorkerSettings, "recordLagGraceMs" | "fileLifetimeMs">;
}

/** The longest wait between a resume's status calls: nothing waits on it but the row. */
const RESUME_RETRY_MAX_MS = 5 * 60_000;

/**
 * A poll job that finds its row already in `archiving` for its own task. Either an earlier run
 * moved the row and died before it added the archive job, or the reconciler found the row without
 * one and sent this poll: either way the archive job may be missing, and nothing else would add
 * it (invariant 1: every row ends). The task's URLs are not in the ledger, so ask KIE once more
 * and add the archive job; its id is the row's job key, so an archive job already there is kept
 * as it is and this costs one status call.
 *
 * When KIE can no longer give the images, nothing can archive the row: it fails with KIE's answer
 * instead of waiting in `archiving` for a reconciler that would send this poll again and again.
 * Only KIE's own answers say so: the task is unknown for as long as a new task's record-lag grace
 * (KIE_RECORD_LAG_GRACE, measured from this resume's first such answer), KIE says it failed, or
 * refuses the call with a final code in its answer's body. Anything else (a 5xx, a timeout, a
 * fleet condition, a bare HTTP 4xx that may be a proxy's, a success without URLs, a task said to
 * be generating) is asked again, the wait growing to 5 minutes, until the task's file lifetime
 * (KIE_FILE_LIFETIME from its completion) is over: then the images are gone whatever KIE says,
 * and the row fails with the last answer.
 */
export async function resumeArchive(
  job: StageJob<PollJob>,
  deps: ResumeArchiveDeps,
  row: Pick<RowState, "completedAt">,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId, notFound: _beforeArchiving, keyMissingSince: _key, ...rest } = job.data;
  const nextMs = retryDelay(job.data.checks, { maxMs: RESUME_RETRY_MAX_MS });
  const next: PollJob = { batch, rowId, taskId, ...rest, checks: job.data.checks + 1 };
  const now = deps.clock.now();
  const expired = (row.completedAt ?? job.data.submittedAt) + deps.settings.fileLifetimeMs <= now;
  /** Asked again later (KIE knows the task: any not-found mark goes), or failed once the files are gone. */
  const later = (answer: string) => {
    const { archiveNotFound: _known, ...known } = next;
    if (expired)
      return cannotArchive(job, deps, `${answer}, past the task's file lifetime (KIE_FILE_LIFETIME)`);
    job.log.warn({ taskId, answer }, "resuming an archive: no usable answer from KIE; asking again later");
    return delay(nextMs, known);
  };
  // The run that moved the row gave the task's in-flight slot back beside its move, and may have
  // failed only at that (the move made): given back here too, or the cap would count a finished
  // task until the slot goes stale (KIE_MAX_IN_FLIGHT). A slot already given back: nothing.
  await deps.fleet.releaseInFlight(jobKey(batch, rowId, job.data.resubmit));
  await deps.fleet.pollSlot(job.signal);
  let record: TaskRecord;
  try {
    record = await deps.kie.getTask(taskId, job.signal);
  } catch (error) {
    if (!isKieError(error)) throw error;
    const answer = `status of task ${taskId} failed: ${error.message}`;
    // KIE's own refusal in its answer's body (a code such as 501, generation failed): final.
    if (error.apiCode !== undefined && !error.retryable && error.fleetEffect === undefined) {
      return cannotArchive(job, deps, answer);
    }
    if (error.code !== "record_not_found") {
      // Says nothing of the task (a fleet condition, a 5xx, a bare 4xx a proxy may have answered):
      // a not-found mark is kept, so an error between two not-found answers does not reset it.
      if (expired) return later(answer);
      job.log.warn(
        { code: error.code, taskId },
        "status call failed while resuming an archive; trying again later",
      );
      return delay(nextMs, next);
    }
    const mark = recordLagMark(job.data.archiveNotFound, now, deps.settings.recordLagGraceMs, nextMs);
    if (expired) return later(answer);
    if (mark) return delay(nextMs, { ...next, archiveNotFound: mark });
    return cannotArchive(job, deps, answer);
  }
  if (record.status === "failed") {
    const failure = `${record.failCode ?? "failed"}: ${record.failMessage ?? "generation failed"}`;
    return cannotArchive(job, deps, `task ${taskId} failed (${failure}) when asked again for its images`);
  }
  if (record.status !== "success" || record.imageUrls.length === 0) {
    return later(
      `task ${taskId} is ${record.status === "success" ? "a success without an image URL" : "still generating"}`,
    );
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

/**
 * The row fails (it stays paid: its credits were settled before it moved to archiving), unless
 * its archive job is still there (this poll ran again beside it: a stall, a lost reply), which
 * archives the row from the URLs it holds or fails it itself: failing the row under it could
 * leave its images stored and the row failed.
 */
async function cannotArchive(
  job: StageJob<PollJob>,
  deps: ResumeArchiveDeps,
  reason: string,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  if (await deps.queues.archiveJobLive?.(batch, rowId)) {
    job.log.warn(
      { reason },
      "KIE no longer gives the task's images, but the row's archive job is there: left to it",
    );
    return done;
  }
  const moved = await deps.ledger.transition(batch, rowId, {
    from: ["archiving"],
    ifTask: taskId,
    to: "failed",
    set: { error: `archive failed: ${reason}` },
  });
  if (moved.ok) job.log.warn({ reason }, "archive failed: KIE no longer gives the task's images; row failed");
  return done;
}
