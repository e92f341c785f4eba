import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import { JobLostError } from "./stage.js";

/** First pause between tries of a record; it doubles up to RECORD_RETRY_MAX_MS. */
const RECORD_RETRY_FIRST_MS = 250;
/** Longest pause between tries: a Redis that is loading or failing over is asked this often. */
const RECORD_RETRY_MAX_MS = 5_000;

/** Redis answers that say "not now" (a failover, a restart that is loading its data, a busy script). */
const TRANSIENT_REPLY = /^(READONLY|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|BUSY|NOREPLICAS)\b/;
/** Socket codes of a connection that broke or could not be made. */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTCONN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);
/** ioredis's words for a command it gave up on while disconnected. */
const TRANSIENT_CLIENT =
  /Connection is closed|Stream isn't writeable|max retries per request|Command timed out/i;

/**
 * True when a Redis call failed because Redis could not answer now (failover: READONLY; restart:
 * LOADING; a broken or refused connection), not because the call itself is wrong. By name, code
 * and message: stage logic imports no Redis client, not even for its error classes.
 */
export function isTransientRedisError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
  if (error.name === "MaxRetriesPerRequestError") return true;
  return TRANSIENT_REPLY.test(error.message) || TRANSIENT_CLIENT.test(error.message);
}

/** What the record loop needs of its job. */
export interface RecordJob {
  log: Logger;
  /** True while this worker holds the job (see StageJob.stillOwned); absent: always held. */
  stillOwned?: () => Promise<boolean>;
}

/**
 * Runs a ledger write that records something already paid for (a taskId). A write that fails
 * because Redis cannot answer now is tried again for as long as the job is this worker's: while
 * Redis cannot say (loading a large dataset takes minutes), nobody else can take the job either,
 * so there is no fixed number of tries. It stops when the job is known to be another worker's
 * (JobLostError: that one finds the create mark and counts the row uncertain), on a write that is
 * wrong rather than early, and when `stop` aborts (shutdown, after its grace). Every failure logs
 * the taskId with batch and row id, so the task can be found even if the process then dies.
 */
export async function recordWithRetry<T>(
  job: RecordJob,
  clock: Pick<Clock, "sleep">,
  what: { batch: string; rowId: string; taskId: string },
  write: () => Promise<T>,
  stop?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      job.log.error({ ...what, attempt, err: error }, "could not record the taskId in Redis");
      if (!isTransientRedisError(error) || stop?.aborted) throw error;
      if ((await ownership(job)) === "lost") {
        throw new JobLostError(
          `job of ${what.batch}/${what.rowId} went to another worker before task ${what.taskId} was recorded`,
        );
      }
      const pauseMs = Math.min(RECORD_RETRY_FIRST_MS * 2 ** (attempt - 1), RECORD_RETRY_MAX_MS);
      try {
        await clock.sleep(pauseMs, stop);
      } catch {
        throw error;
      }
    }
  }
}

/** "lost" only when Redis says so; "unknown" while it cannot answer (nobody can take the job then). */
async function ownership(job: RecordJob): Promise<"held" | "lost" | "unknown"> {
  if (!job.stillOwned) return "held";
  try {
    return (await job.stillOwned()) ? "held" : "lost";
  } catch {
    return "unknown";
  }
}
