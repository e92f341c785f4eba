/**
 * Backoff schedules, as pure functions of the attempt number (and, where there is jitter, of an
 * injected `rand`), so a test pins every value with a fixed `rand` and no clock.
 */

/** A source of uniform numbers in [0, 1), `Math.random` by default. */
export type Rand = () => number;

/**
 * Polling mode's status-call ladder, in multiples of its first step (KIE_POLL_INTERVAL): first
 * check 20 s after the submit, then 1.6x per check up to 9x the first step (180 s). An 8-minute
 * generation costs about 6-7 calls, a 15-minute one about 9, so 2 creates/s (KIE's documented
 * rate) of generations up to 15 minutes need under 20 status calls/s (KIE_POLL_RATE's default).
 */
export const POLL_BACKOFF = {
  /** The first check after a submit (KIE_POLL_INTERVAL's default): KIE asks for no faster than 2-3 s. */
  firstMs: 20_000,
  /** Growth per check: each wait is 60% of the time already waited, about. */
  factor: 1.6,
  /** The cap, as a multiple of the first step: 180 s by default. Jitter stays under it. */
  capSteps: 9,
  /** ±20%: thousands of tasks submitted together must not be polled in lockstep. */
  jitter: 0.2,
} as const;

/**
 * Webhook mode's safety net, in shares of KIE_MAX_WAIT: the callback wakes the poll when the task
 * ends, so the poll's own checks only catch a lost callback: the first a third of the way to the
 * deadline (10 min of 30), then every sixth (5 min). Never more often than polling mode.
 */
const WEBHOOK_POLL_BACKOFF = {
  firstShare: 1 / 3,
  everyShare: 1 / 6,
} as const;

/** What the status-call schedule of a task depends on: the worker's settings. */
export interface PollSchedule {
  /** KIE_POLL_INTERVAL: the first check after a submit in polling mode; the ladder scales with it. */
  firstMs: number;
  /**
   * KIE_MAX_WAIT: no check is put off past the deadline (the next lands at most one first step
   * after it, so the row fails on time); webhook mode's safety net is measured in it.
   * Without it, neither applies. @defaultValue undefined
   */
  maxWaitMs?: number;
  /** KIE_CALLBACK_URL is set: callbacks do the work, the schedule is a safety net. @defaultValue false */
  webhook?: boolean;
  /**
   * No wait is longer: a generating task's in-flight slot is touched at its checks and dropped as
   * a dead job's once untouched for an hour, so the checks of a long KIE_MAX_WAIT's safety net or
   * a long KIE_POLL_INTERVAL's ladder must still come well within it. @defaultValue no bound
   */
  maxGapMs?: number;
}

/** Retries of transient failures (5xx, network): exponential from `baseMs`, capped at `maxMs`. */
export const RETRY_BACKOFF = {
  baseMs: 1_000,
  factor: 2,
  maxMs: 60_000,
} as const;

/** The fleet-wide backoff kinds: 429 (rate limited) and 455 (maintenance). */
export type FleetBackoffKind = "rate-limited" | "maintenance";

/** Fleet backoff per kind: `baseMs * factor^(consecutive - 1)`, capped. */
export const FLEET_BACKOFF: Record<FleetBackoffKind, { baseMs: number; factor: number; maxMs: number }> = {
  /** 2 s, 4 s, 8 s, ... 60 s. The request created nothing, so waiting costs only time. */
  "rate-limited": { baseMs: 2_000, factor: 2, maxMs: 60_000 },
  /** 30 s, 60 s, 120 s, ... 5 min. Maintenance lasts minutes; hammering it helps no one. */
  maintenance: { baseMs: 30_000, factor: 2, maxMs: 300_000 },
};

/** A non-negative integer step from any input (NaN and negatives count as 0). */
function step(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** `base * factor^n`, capped, without overflowing for large `n`. */
function capped(base: number, factor: number, n: number, max: number): number {
  const value = base * factor ** n;
  return Number.isFinite(value) ? Math.min(value, max) : max;
}

/**
 * Delay before a task's next status check, `checks` checks after its submit (0: the first, set
 * by the submit) and `elapsedMs` since the submit. One `rand` draw jitters the step ±20%.
 * Polling mode: the ladder (POLL_BACKOFF) scaled to `firstMs`. Webhook mode: the longer of that
 * and the safety net (WEBHOOK_POLL_BACKOFF). Either way cut to land at most one first step past
 * KIE_MAX_WAIT, so the deadline fails the row on time; no wait is under 80% of the first step.
 */
export function pollDelay(
  checks: number,
  elapsedMs: number,
  schedule: PollSchedule,
  rand: Rand = Math.random,
): number {
  const { firstMs, maxWaitMs } = schedule;
  const k = step(checks);
  const jitter = 1 + POLL_BACKOFF.jitter * (2 * rand() - 1);
  const capMs = firstMs * POLL_BACKOFF.capSteps;
  let ms = Math.min(capMs, capped(firstMs, POLL_BACKOFF.factor, k, capMs) * jitter);
  if (schedule.webhook === true && maxWaitMs !== undefined) {
    const share = k === 0 ? WEBHOOK_POLL_BACKOFF.firstShare : WEBHOOK_POLL_BACKOFF.everyShare;
    ms = Math.max(ms, maxWaitMs * share * jitter);
  }
  if (schedule.maxGapMs !== undefined) ms = Math.min(ms, schedule.maxGapMs);
  if (maxWaitMs !== undefined) {
    // Past the deadline the row fails at its next check: put it just after, not a cap later.
    const untilDeadline = Math.max(0, maxWaitMs - (Number.isFinite(elapsedMs) ? elapsedMs : 0));
    ms = Math.min(ms, untilDeadline + firstMs);
  }
  return Math.round(ms);
}

export interface RetryDelayOptions {
  /** Delay scale of the first retry. @defaultValue RETRY_BACKOFF.baseMs */
  baseMs?: number;
  /** Cap of the exponential step. @defaultValue RETRY_BACKOFF.maxMs */
  maxMs?: number;
  /**
   * "full": uniform in [0, step) (spreads best, may retry at once); "equal": uniform in
   * [step/2, step) (always waits at least half); "none": exactly the step.
   * @defaultValue "equal"
   */
  jitter?: "full" | "equal" | "none";
  /** @defaultValue Math.random */
  rand?: Rand;
}

/** Delay before retry number `attempt` (0 = the first retry) of a transient failure. */
export function retryDelay(attempt: number, options: RetryDelayOptions = {}): number {
  const baseMs = options.baseMs ?? RETRY_BACKOFF.baseMs;
  const maxMs = options.maxMs ?? RETRY_BACKOFF.maxMs;
  const rand = options.rand ?? Math.random;
  const stepMs = capped(baseMs, RETRY_BACKOFF.factor, step(attempt), maxMs);
  switch (options.jitter ?? "equal") {
    case "full":
      return Math.round(stepMs * rand());
    case "equal":
      return Math.round(stepMs / 2 + (stepMs / 2) * rand());
    case "none":
      return Math.round(stepMs);
  }
}

/**
 * The fleet-wide pause after the `consecutive`-th hit in a row (1 = the first) of a 429 or 455.
 * No jitter: it is one deadline shared in Redis, and the rate limiter spreads the restart.
 */
export function fleetBackoff(consecutive: number, kind: FleetBackoffKind): number {
  const { baseMs, factor, maxMs } = FLEET_BACKOFF[kind];
  return Math.round(capped(baseMs, factor, Math.max(0, step(consecutive) - 1), maxMs));
}

/**
 * The late checks of a task given up on at KIE_MAX_WAIT (still generating, or answers without an
 * outcome): it may yet finish, and be charged, so it is asked again at twice, four, eight... times
 * KIE_MAX_WAIT after its submit (1 h, 2 h, 4 h... of 30 min), and a last time at the horizon, a
 * day after the submit (result URLs last about that long) or twice KIE_MAX_WAIT when longer.
 */
export const LATE_CHECKS = {
  horizonMs: 24 * 3_600_000,
  /** The doubling starts from at least this (a KIE_MAX_WAIT of a few seconds in a test). */
  minWaitMs: 1_000,
  /**
   * A check that got no answer about the task (a 5xx, a 429 or maintenance, no worker here with
   * its key) counts for nothing: it is asked again this much later...
   */
  againMs: 60_000,
  /** ...doubling as it is put off, to at most this... */
  againMaxMs: 30 * 60_000,
  /** ...for as long as this past the horizon at most. */
  overrunMs: 3_600_000,
} as const;

/** When (epoch ms) a task submitted at `submittedAt` has its last late check. */
export function lateHorizon(submittedAt: number, maxWaitMs: number): number {
  return submittedAt + Math.max(LATE_CHECKS.horizonMs, 2 * Math.max(maxWaitMs, LATE_CHECKS.minWaitMs));
}

/**
 * When (epoch ms) the next late check of a task submitted at `submittedAt` is due, after `made`
 * late checks; undefined once the last (the one at the horizon) is made.
 */
export function lateCheckAt(submittedAt: number, maxWaitMs: number, made: number): number | undefined {
  const wait = Math.max(maxWaitMs, LATE_CHECKS.minWaitMs);
  const horizon = lateHorizon(submittedAt, maxWaitMs);
  // The check made last was already the horizon's: none after it.
  if (made > 0 && submittedAt + wait * 2 ** made >= horizon) return undefined;
  return Math.min(submittedAt + wait * 2 ** (made + 1), horizon);
}
