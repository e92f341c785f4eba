/**
 * The late checks of a task given up on at KIE_MAX_WAIT (poll-deadlines.ts): its row failed, the
 * task's reservation held, for the task may still finish, and be charged, hours later (KIE under
 * load). The same poll job asks again at twice, four, eight... times KIE_MAX_WAIT after the submit,
 * up to a day (core/backoff.ts `lateCheckAt`), each check a status call in KIE_POLL_RATE. A
 * success is archived after all: the row moves from failed to archiving, the cost settled from
 * the reservation it held (no create, no new reservation). A failure settles the task and names
 * it in the row's error. No final answer by the last check leaves the row failed, for `retry`.
 * A callback of the task (webhook mode) wakes the job at once.
 */
import { LATE_CHECKS, lateCheckAt, lateHorizon } from "../core/backoff.js";
import { PAUSE_POLICY } from "../fleet/policy.js";
import { isKieError } from "../kie/errors.js";
import type { TaskRecord } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { RowState } from "../ledger/types.js";
import { jobKey, type PollJob } from "./jobs.js";
import { pastMaxWait } from "./poll-deadlines.js";
import type { PollDeps } from "./poll-deps.js";
import { onSucceeded, taskRecord } from "./poll-outcome.js";
import { settleTask } from "./poll-settle.js";
import type { FleetPort } from "./ports.js";
import { delay, done, type StageJob, type StageResult } from "./stage.js";
import { taskLane } from "./task-key.js";

/** No late check is put less than this after the one before (a delay of 0 would spin). */
const MIN_LATE_DELAY_MS = 1_000;

/** The job's data for its next late check, `made` checks made (marks of the in-flight checks dropped). */
function lateData(job: StageJob<PollJob>, made: number): PollJob {
  const { notFound: _notFound, keyMissingSince: _since, archiveNotFound: _resume, ...data } = job.data;
  return { ...data, late: made };
}

type LateDeps = Pick<PollDeps, "clock"> & {
  ledger: Pick<Ledger, "transition">;
  settings: { maxWaitMs: number };
};

/**
 * The last late check came and went without a final answer: the row's error says so, and why
 * (`keyId`: no worker here had the task's API key to ask with).
 */
async function giveUp(job: StageJob<PollJob>, deps: LateDeps, keyId?: string): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  const why =
    keyId === undefined
      ? `no final answer for task ${taskId} a day after its submit (KIE_MAX_WAIT, then its late checks)`
      : `task ${taskId} not asked about since KIE_MAX_WAIT: no worker had API key ${keyId}, which created it, for a day after its submit (give the workers that key again, KIE_API_KEYS)`;
  const error = `${why}: its credits stay held, for KIE may still charge it; \`kie-batch retry\` polls it again`;
  await deps.ledger.transition(batch, rowId, { from: ["failed"], ifTask: taskId, set: { error } });
  job.log.warn(
    { taskId },
    "no final answer for the task a day after its submit: its late checks end, the row stays failed",
  );
  return done;
}

/**
 * The job after `made` late checks: delayed to the next, or done after the last. The first is
 * asked for by the KIE_MAX_WAIT failure itself (`made` 0).
 */
async function nextLateCheck(
  job: StageJob<PollJob>,
  deps: LateDeps,
  made: number,
): Promise<StageResult<PollJob>> {
  const at = lateCheckAt(job.data.submittedAt, deps.settings.maxWaitMs, made);
  if (at === undefined) return giveUp(job, deps);
  return delay(Math.max(MIN_LATE_DELAY_MS, at - deps.clock.now()), lateData(job, made));
}

/**
 * A late check that got no answer about the task (a 5xx, a 429, KIE's maintenance, no worker here
 * with its key): it counts for nothing and is asked again, a minute on, then as long again as it
 * has been put off (1, 2, 4... minutes, at most `againMaxMs`), until an hour past the last check's
 * time; a task that finished meanwhile is never missed for a passing outage.
 */
async function askAgain(
  job: StageJob<PollJob>,
  deps: PollDeps,
  keyId?: string,
): Promise<StageResult<PollJob>> {
  const { submittedAt } = job.data;
  const now = deps.clock.now();
  if (now > lateHorizon(submittedAt, deps.settings.maxWaitMs) + LATE_CHECKS.overrunMs)
    return giveUp(job, deps, keyId);
  // When this check was due: the doubling goes from there.
  const due = lateCheckAt(submittedAt, deps.settings.maxWaitMs, job.data.late ?? 0) ?? now;
  const wait = Math.min(LATE_CHECKS.againMaxMs, Math.max(LATE_CHECKS.againMs, now - due));
  return delay(wait, lateData(job, job.data.late ?? 0));
}

/**
 * A status call's failure that says nothing of the task (the fleet's 429, 455 or bad key, a 5xx, a
 * timeout): asked again. Anything else (KIE does not know the task, a refusal) counts as a check.
 */
function saysNothingOfTask(error: { fleetEffect?: unknown; retryable: boolean; code: string }): boolean {
  return error.fleetEffect !== undefined || (error.retryable && error.code !== "record_not_found");
}

/** The row failed for this task, its reservation still held: the task is unsettled, a late finish owed. */
function unsettledFailure(
  row: Pick<RowState, "status" | "taskId" | "creditsReserved">,
  taskId: string,
): boolean {
  return row.status === "failed" && row.taskId === taskId && row.creditsReserved > 0;
}

/**
 * A run without `late` that finds its row failed for its task, the task's reservation still held
 * (unsettled) and KIE_MAX_WAIT past: the run that failed it died before its late checks were
 * saved (or its move's reply was lost), so they start here. Anything else failed is done.
 */
export async function lateChecksOwed(
  job: StageJob<PollJob>,
  deps: PollDeps,
  row: RowState,
): Promise<StageResult<PollJob>> {
  const owed =
    unsettledFailure(row, job.data.taskId) &&
    pastMaxWait(job.data, deps.clock.now(), deps.settings.maxWaitMs);
  if (!owed) return done;
  return nextLateCheck(job, deps, 0);
}

/** One late check of the row's task (`job.data.late` set): see the module's comment. */
export async function lateCheck(
  job: StageJob<PollJob>,
  base: PollDeps,
  row: RowState,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  // Moved on meanwhile (a `retry` polls it with its own job): nothing left to check here.
  if (row.status !== "failed") return done;
  const made = (job.data.late ?? 0) + 1;
  // A key no worker here has (another may; a worker with it may come back): asked again soon.
  const lane = taskLane(base.keys, row, taskId);
  if ("missing" in lane) return askAgain(job, base, lane.missing);
  const deps: PollDeps = { ...base, ...lane };
  await deps.fleet.pollSlot(job.signal);
  let record: TaskRecord;
  try {
    record = await taskRecord(deps.kie, taskId, job.signal);
  } catch (error) {
    if (!isKieError(error)) throw error;
    if (error.fleetEffect === "bad-key") await deps.fleet.pause("bad-key", PAUSE_POLICY["bad-key"].reason());
    return saysNothingOfTask(error) ? askAgain(job, deps) : nextLateCheck(job, deps, made);
  }
  switch (record.status) {
    case "generating":
      return nextLateCheck(job, deps, made);
    case "success":
      job.log.info({ taskId }, "task finished after KIE_MAX_WAIT: its row is archived after all");
      return onSucceeded(job, deps, row, record, ["failed"]);
    case "failed": {
      await settleTask(job, deps.ledger, row, record);
      const reason = `generation failed (${record.failCode ?? "failed"}): ${record.failMessage ?? "generation failed"} [task ${taskId}], after KIE_MAX_WAIT; not resubmitted: \`kie-batch retry\` resubmits it`;
      await deps.ledger.transition(batch, rowId, {
        from: ["failed"],
        ifTask: taskId,
        set: { error: reason },
      });
      job.log.warn({ taskId, reason }, "task failed after KIE_MAX_WAIT");
      return done;
    }
  }
}

export interface MaxWaitDeps {
  ledger: Pick<Ledger, "transition">;
  fleet: Pick<FleetPort, "releaseInFlight">;
  clock: { now(): number };
  settings: { maxWaitMs: number };
}

/**
 * Fails a row whose task had no final answer within KIE_MAX_WAIT, whatever the answer was (still
 * generating, a success without an image, an unknown state, a 500 again and again), saying what
 * KIE said last. The task id stays on the row and its reservation stays held (the task may still
 * finish and be charged): the job goes on as the task's late checks (above), which archive
 * a late success, and `kie-batch retry` polls the same task again at once; neither pays twice.
 */
export async function failPastMaxWait(
  job: StageJob<PollJob>,
  deps: MaxWaitDeps,
  lastAnswer: string,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId, resubmit } = job.data;
  await deps.fleet.releaseInFlight(jobKey(batch, rowId, resubmit));
  const moved = await deps.ledger.transition(batch, rowId, {
    from: ["submitted", "generating"],
    ifTask: taskId,
    to: "failed",
    set: {
      error: `no final answer for task ${taskId} after ${spoken(deps.settings.maxWaitMs)} (KIE_MAX_WAIT), last: ${lastAnswer}; task ${taskId} kept and asked again until a day after its submit (a late finish is archived); \`kie-batch retry\` polls it again now`,
    },
    rowOnRefusal: true,
  });
  // A move whose reply was lost and that was sent again finds the row failed for this task, its
  // reservation held: its late checks are still owed. Moved on otherwise (an operator, another run).
  const ours = moved.ok || (moved.row !== undefined && unsettledFailure(moved.row, taskId));
  if (!ours) return done;
  job.log.warn({ taskId, lastAnswer }, "gave up on a task without a final answer after KIE_MAX_WAIT");
  return nextLateCheck(job, deps, 0);
}

/** "30 min", "90 s": a wait as an operator reads it. */
function spoken(ms: number): string {
  return ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}
