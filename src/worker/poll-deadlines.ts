/**
 * The poll stage's two deadlines: how long "recordInfo is null" is taken for KIE's lag, and how
 * long a task may stay without a final answer (KIE_MAX_WAIT). Both end in a row that moves on,
 * so no row is polled forever (invariant 1: every row ends).
 */
import type { Ledger } from "../ledger/index.js";
import { jobKey, type PollJob } from "./jobs.js";
import { nextLateCheck } from "./poll-late.js";
import type { FleetPort } from "./ports.js";
import { done, type StageJob, type StageResult } from "./stage.js";

type NotFound = NonNullable<PollJob["notFound"]>;

/**
 * Where the record-lag grace stands after one more "recordInfo is null": the mark to keep in the
 * job's data while it lasts, or undefined once it is over. Both measures must reach the grace:
 * the time since a poller first saw the answer (on that poller's clock, never against the
 * submitting machine's) and the delays this job has waited since (durations, which no skew
 * between two pollers' clocks can shorten). `nextDelayMs` is the delay about to be asked.
 */
export function recordLagMark(
  mark: NotFound | undefined,
  now: number,
  graceMs: number,
  nextDelayMs: number,
): NotFound | undefined {
  if (mark === undefined) return { since: now, waitedMs: Math.round(nextDelayMs) };
  if (now - mark.since >= graceMs && mark.waitedMs >= graceMs) return undefined;
  return { since: mark.since, waitedMs: mark.waitedMs + Math.round(nextDelayMs) };
}

/** The job's data without the record-lag mark: KIE knows the task. */
export function withoutNotFound(data: PollJob): PollJob {
  const { notFound: _notFound, ...rest } = data;
  return rest;
}

/** True once the task has had KIE_MAX_WAIT since its submit without a final answer. */
export function pastMaxWait(data: Pick<PollJob, "submittedAt">, now: number, maxWaitMs: number): boolean {
  return now - data.submittedAt > maxWaitMs;
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
 * finish and be charged): the job goes on as the task's late checks (poll-late.ts), which archive
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
  // Moved on meanwhile (another run of this job, an operator): nothing of it is this job's.
  if (!moved.ok) return done;
  job.log.warn({ taskId, lastAnswer }, "gave up on a task without a final answer after KIE_MAX_WAIT");
  return nextLateCheck(job, deps, 0);
}

/** "30 min", "90 s": a wait as an operator reads it. */
function spoken(ms: number): string {
  return ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}
