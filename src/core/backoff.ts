/**
 * Backoff schedules, as pure functions of the attempt number (and, where there is jitter, of an
 * injected `rand`), so a test pins every value with a fixed `rand` and no clock.
 */

/** A source of uniform numbers in [0, 1), `Math.random` by default. */
export type Rand = () => number;

/** Status-call schedule: first check after ~5 s, then 1.5x per check up to a 60 s cap. */
export const POLL_BACKOFF = {
  /** Delay before the first status check. */
  firstMs: 5_000,
  /** Growth per check. */
  factor: 1.5,
  /** No delay exceeds this, jitter included. */
  maxMs: 60_000,
  /** ±20%: thousands of tasks submitted together must not be polled in lockstep. */
  jitter: 0.2,
} as const;

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
 * Delay before status check number `attempt` (0 = the first check after the submit).
 * The cap is hard: jitter spreads the checks at the cap over 48-60 s rather than past 60 s.
 */
export function pollDelay(attempt: number, rand: Rand = Math.random): number {
  const { firstMs, factor, maxMs, jitter } = POLL_BACKOFF;
  const base = capped(firstMs, factor, step(attempt), maxMs);
  const jittered = base * (1 + jitter * (2 * rand() - 1));
  return Math.round(Math.min(maxMs, jittered));
}

/**
 * The poll schedule (about 5 s, growing 1.5x to 60 s) scaled so its first step is `firstMs`
 * (KIE_POLL_INTERVAL): the whole ladder, cap and jitter included, stretches by the same factor.
 */
export function scaledPollDelay(
  checks: number,
  firstMs: number = POLL_BACKOFF.firstMs,
  rand: Rand = Math.random,
): number {
  return pollDelay(checks, rand) * (firstMs / POLL_BACKOFF.firstMs);
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
