import type { BackoffStrategy, JobsOptions } from "bullmq";
import type { Rand } from "../core/backoff.js";
import type { Stage } from "../worker/jobs.js";

/**
 * What a stage's jobs carry of their own in their options, and the retry backoff they name.
 *
 * Every value of a BullMQ job hash stays at most 64 bytes (Redis's `hash-max-listpack-value`), so
 * the hash keeps Redis's compact `listpack` encoding (~280 B for a queued submit job) instead of a
 * `hashtable` (~700 B): a million queued rows are a million such hashes (issue 10). So:
 * - the backoff is named, not spelt out: `{ type: "e2" }` is "exponential from 2 s, jitter 0.5",
 *   computed by `stageBackoff`, which every stage worker gets as `settings.backoffStrategy`
 *   (runner.ts). Jobs written before with `{ type: "exponential", delay, jitter }` still back off
 *   by BullMQ's built-in strategy of that name (BullMQ looks built-in names up first);
 * - the job id is not copied into the stored options (queues.ts `StageQueue`): it is the hash's key;
 * - what happens to a finished job (removeOnComplete/removeOnFail) is the worker's option.
 */

/** Jitter of every stage's retry backoff: a delay is drawn from [50%, 100%] of its step. */
const JITTER = 0.5;
/** Base of the ladder when a type is not one of ours (never written by this code): 5 s. */
const FALLBACK_BASE_MS = 5_000;

/** The backoff type a stage's jobs name: `e<seconds>`, exponential from that many seconds. */
export const STAGE_BACKOFF_TYPE: Readonly<Record<Stage, string>> = {
  submit: "e2",
  // Their processors back off by themselves; BullMQ attempts cover only unexpected errors.
  poll: "e5",
  archive: "e5",
};

/**
 * The delay before retry number `attemptsMade` (1 for the first retry) of a job whose backoff is
 * `type`: BullMQ's own exponential ladder with jitter, `base * 2^(n-1)` drawn down by up to 50%.
 */
export function stageRetryDelay(
  attemptsMade: number,
  type: string | undefined,
  rand: Rand = Math.random,
): number {
  const match = /^e(\d{1,3})$/.exec(type ?? "");
  const baseMs = match ? Number(match[1]) * 1_000 : FALLBACK_BASE_MS;
  const maxDelay = Math.round(2 ** (Math.max(1, attemptsMade) - 1) * baseMs);
  return Math.floor(rand() * maxDelay * JITTER + maxDelay * (1 - JITTER));
}

/** The stage workers' `settings.backoffStrategy` (runner.ts). */
export const stageBackoff: BackoffStrategy = (attemptsMade, type) => stageRetryDelay(attemptsMade, type);

/** Job options per stage: only what a job needs of its own. */
export function stageJobOptions(stage: Stage, submitAttempts = 8): JobsOptions {
  return {
    attempts: stage === "submit" ? submitAttempts : 10,
    backoff: { type: STAGE_BACKOFF_TYPE[stage] },
  };
}
