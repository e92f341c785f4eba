/**
 * When a task's status is checked: polling mode's ladder, or webhook mode's safety net, never
 * past KIE_MAX_WAIT by more than a step, and never so far apart that its in-flight slot goes stale.
 */
import { type PollSchedule, pollDelay } from "../core/backoff.js";
import { DEFAULT_IN_FLIGHT_STALE_MS } from "../fleet/in-flight.js";
import type { WorkerSettings } from "./ports.js";

/**
 * The longest wait between a generating task's checks: a third of the hour after which an
 * untouched in-flight slot is dropped as a dead job's. Each check touches it, whatever KIE
 * answered, so a check or two lost to a crash or a Redis blip drops no slot whose task still
 * generates (it would no longer count against KIE_MAX_IN_FLIGHT).
 */
const POLL_MAX_GAP_MS = DEFAULT_IN_FLIGHT_STALE_MS / 3;

/** The worker's status-call schedule: polling mode, or webhook mode's safety net when callbacks are on. */
export function pollScheduleOf(
  settings: Pick<WorkerSettings, "pollFirstMs" | "callbackUrl"> & Partial<Pick<WorkerSettings, "maxWaitMs">>,
): PollSchedule {
  return {
    firstMs: settings.pollFirstMs,
    webhook: settings.callbackUrl !== undefined,
    maxGapMs: POLL_MAX_GAP_MS,
    ...(settings.maxWaitMs === undefined ? {} : { maxWaitMs: settings.maxWaitMs }),
  };
}

/** The delay before a task's first status check, from its submit. */
export function firstPollDelay(settings: Parameters<typeof pollScheduleOf>[0]): number {
  return pollDelay(0, 0, pollScheduleOf(settings));
}
