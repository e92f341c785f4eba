/**
 * The poll stage's two deadlines: how long "recordInfo is null" is taken for KIE's lag, and how
 * long a task may stay without a final answer (KIE_MAX_WAIT; what follows it is poll-late.ts).
 * Both end in a row that moves on, so no row is polled forever (invariant 1: every row ends).
 */
import type { PollJob } from "./jobs.js";

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
