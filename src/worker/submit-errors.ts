import { submitFleetAction } from "../fleet/policy.js";
import { isKieError, type KieError } from "../kie/errors.js";
import type { Ledger } from "../ledger/index.js";
import type { SubmitJob } from "./jobs.js";
import type { FleetPort, WorkerSettings } from "./ports.js";
import { done, isLastAttempt, StageError, type StageJob, type StageResult } from "./stage.js";

/** What handling a refused or lost create uses (a part of SubmitDeps). */
export interface SubmitErrorDeps {
  ledger: Pick<Ledger, "transition" | "releaseReservation">;
  fleet: Pick<FleetPort, "backoff" | "pause">;
  settings: Pick<WorkerSettings, "creditsProbeMs" | "usageCapProbeMs">;
  /** The short hash of the key the create went out with (several keys): named in what is logged. */
  keyId?: string;
}

/**
 * A create whose answer never came back (a reset, a timeout, a 502/504, a shutdown that cut the
 * request, any error that is not KIE's) may have made, and charged, a task: its reservation is
 * kept as spent-uncertain, once per attempt (a next run of the job that finds its mark, made at
 * `markedAt`, counts the same attempt), so a retry reserves again.
 */
export async function countIfMaybeCreated(
  error: unknown,
  job: StageJob<SubmitJob>,
  ledger: Pick<Ledger, "keepUncertain">,
  markedAt: number | undefined,
): Promise<void> {
  if (isKieError(error) && !error.maybeCreated) return;
  const { batch, rowId, resubmit } = job.data;
  const attempt = markedAt === undefined ? undefined : { lineage: resubmit, mark: markedAt };
  const kept = await ledger.keepUncertain(batch, rowId, 0, undefined, attempt);
  job.log.warn(
    { code: isKieError(error) ? error.code : undefined, creditsUncertain: kept },
    "submit answer lost: the task may exist; its credits are counted as uncertain and a retry reserves again",
  );
}

/**
 * What the submit stage does with a create KIE answered with an error (or whose answer was lost).
 * Fleet-wide conditions keep the job and loop ("again": the request created nothing, so the
 * attempt's reservation stays for the next one); a row the API refuses fails and gives its
 * reservation back; anything transient is retried by BullMQ with backoff until the attempts run
 * out. An attempt whose answer was lost (`maybeCreated`) was counted uncertain by the caller
 * before this runs (its reservation kept as spent-uncertain), so a retry reserves again.
 */
export async function handleSubmitError(
  error: KieError,
  job: StageJob<SubmitJob>,
  deps: SubmitErrorDeps,
): Promise<"again" | StageResult<SubmitJob>> {
  const { batch, rowId } = job.data;
  const log = deps.keyId === undefined ? job.log : job.log.child({ key: deps.keyId });
  const fleet = submitFleetAction(error, {
    "out-of-credits": deps.settings.creditsProbeMs,
    "usage-cap": deps.settings.usageCapProbeMs,
  });
  if (fleet?.action === "back-off") {
    const { remainingMs, consecutive } = await deps.fleet.backoff(fleet.kind);
    log.warn({ code: error.code, consecutive, backoffMs: remainingMs }, fleet.log);
    return "again";
  }
  if (fleet?.action === "pause") {
    // Exactly one caller fleet-wide starts the pause: it alone logs (and, through the port, alerts).
    if (await deps.fleet.pause(fleet.kind, fleet.reason, fleet.probe)) log.error(fleet.log);
    return "again";
  }
  if (error.retryable && !isLastAttempt(job)) {
    throw new StageError(`submit failed: ${error.message}`, true, { cause: error });
  }
  if (error.code === "bad_request") log.error({ err: error }, "KIE answered 400 to a submit: this is a bug");
  await deps.ledger.releaseReservation(batch, rowId);
  const reason = error.retryable
    ? `submit failed after ${job.attempts} attempts: ${error.message}`
    : `KIE refused the row: ${error.message}`;
  await deps.ledger.transition(batch, rowId, { from: ["queued"], to: "failed", set: { error: reason } });
  log.warn({ code: error.code, reason }, "row failed at submit");
  return done;
}
