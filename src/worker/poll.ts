import { type PollSchedule, pollDelay, retryDelay } from "../core/backoff.js";
import { failpoint } from "../core/failpoints.js";
import { PAUSE_POLICY } from "../fleet/policy.js";
import { isKieError } from "../kie/errors.js";
import type { TaskRecord } from "../kie/types.js";
import type { RowState } from "../ledger/types.js";
import { jobKey, type PollJob, pollJobSchema } from "./jobs.js";
import { resumeArchive } from "./poll-archiving.js";
import { pastMaxWait, recordLagMark, withoutNotFound } from "./poll-deadlines.js";
import type { PollDeps } from "./poll-deps.js";
import { failPastMaxWait, lateCheck, lateChecksOwed } from "./poll-late.js";
import { onSucceeded, taskRecord } from "./poll-outcome.js";
import { recordAgain, recordLost } from "./poll-record.js";
import { pollScheduleOf } from "./poll-schedule.js";
import { settleTask } from "./poll-settle.js";
import { delay, done, type StageDefinition, type StageJob, type StageResult } from "./stage.js";
import { KEY_MISSING_GRACE_MS, keyMissing, taskLane } from "./task-key.js";

export type { PollDeps };

export const pollStage = {
  name: "poll",
  schema: pollJobSchema,
  run: runPoll,
  owns: ["submitted", "generating"] as const,
} satisfies StageDefinition<PollJob>;

/**
 * The poll stage: one status call per run, then back to delayed with the next backoff step, so
 * thousands of generations in flight hold no worker slot and no timer in memory.
 */
export async function runPoll(job: StageJob<PollJob>, base: PollDeps): Promise<StageResult<PollJob>> {
  // A resume's not-found mark (poll-archiving.ts) is its own: the normal branches never carry it.
  const { keyMissingSince: _since, archiveNotFound: _resume, ...data } = job.data;
  const { batch, rowId, taskId } = data;
  // The row's state only (its hash): nothing here reads the prompt or params, and a task is
  // polled several times. A row archived here is the transition's answer, body and all.
  const found = await base.ledger.getRowState(batch, rowId);
  const row = found && recordLost(found, data) ? await recordAgain(job, base.ledger) : found;
  // A purged row or a newer task (resubmit, retry): nothing to do.
  if (!row || row.taskId !== taskId) return done;
  // Given up on at KIE_MAX_WAIT: the job now only asks whether the task finished after all (a row
  // a late check moved to archiving, its archive cut short, is resumed below as any other).
  if (job.data.late !== undefined && row.status !== "archiving") return lateCheck(job, base, row);
  // Failed at KIE_MAX_WAIT by a run that died before its late checks were saved: they start now.
  if (row.status === "failed") return lateChecksOwed(job, base, row);
  // A row already past this stage: nothing to do.
  if (row.status !== "submitted" && row.status !== "generating" && row.status !== "archiving") return done;
  // Every call about the task goes out with the key that created it.
  const lane = taskLane(base.keys, row, taskId);
  if ("missing" in lane) {
    const graceMs = base.settings.keyMissingGraceMs ?? KEY_MISSING_GRACE_MS;
    const { held, releaseInFlight, noteWait } = base.keys ?? {};
    const fileLifetimeMs = base.settings.fileLifetimeMs;
    const missing = {
      ledger: base.ledger,
      clock: base.clock,
      graceMs,
      held,
      noteWait,
      releaseInFlight,
      fileLifetimeMs,
      archiveJobLive: base.queues.archiveJobLive?.bind(base.queues),
    };
    return keyMissing(job, missing, lane.missing, row);
  }
  const deps: PollDeps = { ...base, ...lane };
  // Moved to archiving by an earlier run that may have died before adding the archive job.
  if (row.status === "archiving") return resumeArchive(job, deps, row);

  await deps.fleet.pollSlot(job.signal);
  const next = { ...data, checks: data.checks + 1 };
  const now = deps.clock.now();
  // The wait before the next check, by how many checks this task has had and its age.
  const schedule = pollScheduleOf(deps.settings);
  const nextDelay = (of: PollSchedule = schedule) => pollDelay(next.checks, now - data.submittedAt, of);
  /** Marks the task's in-flight slot alive: at every check it may still be generating after. */
  const touch = () => deps.fleet.touchInFlight(jobKey(batch, rowId, data.resubmit));
  let record: TaskRecord;
  try {
    record = await taskRecord(deps.kie, taskId, job.signal);
  } catch (error) {
    if (!isKieError(error)) throw error;
    if (error.code === "record_not_found") {
      const ms = nextDelay();
      const notFound = recordLagMark(data.notFound, now, deps.settings.recordLagGraceMs, ms);
      if (notFound) {
        await touch();
        return delay(ms, { ...next, notFound });
      }
      // Most likely the create never happened, but KIE may yet run the task and charge it: its
      // reservation stays spent-uncertain and the row counts it (invariant 2), before a resubmit.
      await deps.ledger.keepUncertain(batch, rowId, row.estimatedCredits, taskId);
      return failGeneration(job, deps, row, {
        code: "unknown_task",
        message: `KIE does not know task ${taskId} ${Math.round((now - (data.notFound?.since ?? now)) / 1000)} s after a poller first asked`,
      });
    }
    if (error.fleetEffect === "bad-key") {
      await deps.fleet.pause("bad-key", PAUSE_POLICY["bad-key"].reason());
    }
    if (error.retryable || error.fleetEffect !== undefined) {
      // A fleet condition (bad key, 429, maintenance) says nothing of this task and is shown
      // fleet-wide; any other answer without an outcome counts against the task's deadline.
      if (error.fleetEffect === undefined && pastMaxWait(data, now, deps.settings.maxWaitMs))
        return failPastMaxWait(job, deps, error.message);
      job.log.warn({ code: error.code, taskId }, "status call failed; trying again later");
      // The task may still generate: its slot stays counted through a long 429 or maintenance.
      await touch();
      // On polling mode's ladder even in webhook mode: the callback that woke this call is spent.
      const ms = nextDelay({ ...schedule, webhook: false });
      return delay(Math.max(ms, retryDelay(data.checks)), next);
    }
    await deps.fleet.releaseInFlight(jobKey(batch, rowId, data.resubmit));
    await deps.ledger.transition(batch, rowId, {
      from: ["submitted", "generating"],
      ifTask: taskId,
      to: "failed",
      set: { error: `status of task ${taskId} failed: ${error.message}` },
    });
    return done;
  }

  switch (record.status) {
    case "generating": {
      if (pastMaxWait(data, now, deps.settings.maxWaitMs))
        return failPastMaxWait(job, deps, "still generating");
      if (row.status === "submitted") {
        await deps.ledger.transition(batch, rowId, {
          from: ["submitted"],
          ifTask: taskId,
          to: "generating",
          set: { generatingAt: now },
          rowOnRefusal: true,
        });
      }
      await touch();
      return delay(nextDelay(), withoutNotFound(next));
    }
    case "success":
      return onSucceeded(job, deps, row, record, ["submitted", "generating"]);
    case "failed": {
      await settleTask(job, deps.ledger, row, record);
      return failGeneration(job, deps, row, {
        code: record.failCode ?? "failed",
        message: record.failMessage ?? "generation failed",
      });
    }
  }
}

/** A failed generation is resubmitted up to KIE_MAX_RESUBMITS times (each costs), then the row fails. */
async function failGeneration(
  job: StageJob<PollJob>,
  deps: PollDeps,
  row: RowState,
  failure: { code: string; message: string },
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId, resubmit } = job.data;
  await deps.fleet.releaseInFlight(jobKey(batch, rowId, resubmit));
  const reason = `generation failed (${failure.code}): ${failure.message} [task ${taskId}]`;
  // An operator's `retry` grants one resubmit beyond the limit (the row's counter still grows). A
  // batch `cancel` ran on gets none (a resubmit is a new create, paid for, after the user said
  // stop): every retry clears the mark first, so a mark seen here came after it. The ledger
  // refuses the move too (transition.lua), for a mark set after this read.
  const mayResubmit = row.resubmits < deps.settings.maxResubmits || job.data.resubmitOnFailure === true;
  const summary = mayResubmit ? await deps.ledger.getBatch(batch) : undefined;
  const cancelled = summary?.cancelledAt !== undefined;
  if (mayResubmit && !cancelled) {
    const moved = await deps.ledger.transition(batch, rowId, {
      from: ["submitted", "generating"],
      ifTask: taskId,
      to: "queued",
      incr: { resubmits: 1 },
      set: { error: `${reason}; resubmitted` },
    });
    // A move whose reply was lost and that was sent again finds the row queued by its first try
    // (one more resubmit, no new task): the submit job must still be added.
    const ours =
      moved.row?.status === "queued" &&
      moved.row.resubmits === row.resubmits + 1 &&
      moved.row.taskIds.length === row.taskIds.length;
    if (moved.ok || ours) {
      await failpoint("poll.after-resubmit-queued");
      // At the batch's priority, as the row's first job (BullMQ runs a job without one first).
      await deps.queues.addSubmit(
        { batch, rowId, resubmit: row.taskIds.length },
        { priority: summary?.priority },
      );
      job.log.warn({ taskId, reason }, "generation failed; resubmitting");
    }
    return done;
  }
  await deps.ledger.transition(batch, rowId, {
    from: ["submitted", "generating"],
    ifTask: taskId,
    to: "failed",
    set: { error: cancelled ? `${reason}; not resubmitted: the batch was cancelled` : reason },
  });
  await failpoint("poll.after-fail");
  job.log.warn({ taskId, reason }, "generation failed; row failed");
  return done;
}
