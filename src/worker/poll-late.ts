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
import { lateCheckAt } from "../core/backoff.js";
import { PAUSE_POLICY } from "../fleet/policy.js";
import { isKieError } from "../kie/errors.js";
import type { TaskRecord } from "../kie/types.js";
import type { RowState } from "../ledger/types.js";
import type { PollJob } from "./jobs.js";
import type { PollDeps } from "./poll-deps.js";
import { onSucceeded, taskRecord } from "./poll-outcome.js";
import { settleTask } from "./poll-settle.js";
import { delay, done, type StageJob, type StageResult } from "./stage.js";
import { taskLane } from "./task-key.js";

/** No late check is put less than this after the one before (a delay of 0 would spin). */
const MIN_LATE_DELAY_MS = 1_000;

/**
 * The job after `made` late checks: delayed to the next, or done after the last. The first is
 * asked for by the KIE_MAX_WAIT failure itself (`made` 0).
 */
export function nextLateCheck(
  job: StageJob<PollJob>,
  deps: Pick<PollDeps, "clock"> & { settings: { maxWaitMs: number } },
  made: number,
): StageResult<PollJob> {
  const { submittedAt, taskId } = job.data;
  const at = lateCheckAt(submittedAt, deps.settings.maxWaitMs, made);
  if (at === undefined) {
    job.log.info(
      { taskId },
      "no final answer for the task a day after its submit: its row stays failed; `kie-batch retry` polls it again",
    );
    return done;
  }
  const { notFound: _notFound, keyMissingSince: _since, ...data } = job.data;
  return delay(Math.max(MIN_LATE_DELAY_MS, at - deps.clock.now()), { ...data, late: made });
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
  const next = () => nextLateCheck(job, base, made);
  // A key no worker here has: left to the next late check (the poll's grace is long past).
  const lane = taskLane(base.keys, row, taskId);
  if ("missing" in lane) return next();
  const deps: PollDeps = { ...base, ...lane };
  await deps.fleet.pollSlot(job.signal);
  let record: TaskRecord;
  try {
    record = await taskRecord(deps.kie, taskId, job.signal);
  } catch (error) {
    if (!isKieError(error)) throw error;
    if (error.fleetEffect === "bad-key") await deps.fleet.pause("bad-key", PAUSE_POLICY["bad-key"].reason());
    // No outcome in the answer (a 5xx, a 429, the record lag): the next late check asks again.
    return next();
  }
  switch (record.status) {
    case "generating":
      return next();
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
