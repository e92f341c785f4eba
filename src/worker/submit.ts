import { scaledPollDelay } from "../core/backoff.js";
import type { Clock } from "../core/clock.js";
import { failpoint } from "../core/failpoints.js";
import { submitFleetAction } from "../fleet/policy.js";
import { isKieError, type KieError } from "../kie/errors.js";
import type { GenerationParams, KieApi, SubmitRequest } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import type { RowRecord } from "../ledger/types.js";
import { waitForOpenGate } from "./gate.js";
import { jobKey, type SubmitJob, submitJobSchema } from "./jobs.js";
import type { FleetPort, StageQueues, WorkerSettings } from "./ports.js";
import { recordWithRetry } from "./record.js";
import {
  delay,
  done,
  graceSignal,
  isLastAttempt,
  JobLostError,
  type StageDefinition,
  StageError,
  type StageJob,
  type StageResult,
} from "./stage.js";

/** The ledger calls the submit stage makes. */
export type SubmitLedger = Pick<Ledger, "getRow" | "transition" | "reserveBudget" | "releaseReservation">;

/**
 * What the submit stage uses of the worker's ports: a test fakes just these. The fleet and KIE
 * stay whole: the gate consults the fleet's pauses and probes the credit balance.
 */
export interface SubmitDeps {
  kie: KieApi;
  ledger: SubmitLedger;
  fleet: FleetPort;
  queues: Pick<StageQueues, "addPoll">;
  clock: Clock;
  settings: Pick<
    WorkerSettings,
    "pollFirstMs" | "callbackUrl" | "budgetRecheckMs" | "creditsProbeMs" | "usageCapProbeMs"
  >;
}

export const submitStage = {
  name: "submit",
  schema: submitJobSchema,
  run: runSubmit,
  owns: ["queued"] as const,
} satisfies StageDefinition<SubmitJob>;

/** A row over its batch's budget looks again this often (a raised budget frees it). */
export const BUDGET_RECHECK_MS = 30_000;
/** With KIE_MAX_IN_FLIGHT reached, a submitter looks for room this often. */
export const IN_FLIGHT_RECHECK_MS = 2_000;
/** On shutdown, a create already on the wire gets this long to come back before it is aborted. */
export const SUBMIT_GRACE_MS = 10_000;

/**
 * The submit stage: one create request per row (per resubmit lineage), at the account's rate.
 *
 * Invariant: once a taskId is recorded for a lineage, that lineage is never submitted again,
 * whatever crashes. The check below runs before any gate, so a retried or recovered job finds
 * the taskId and only makes sure the poll job exists.
 */
export async function runSubmit(job: StageJob<SubmitJob>, deps: SubmitDeps): Promise<StageResult<SubmitJob>> {
  const { batch, rowId, resubmit } = job.data;
  const key = jobKey(batch, rowId, resubmit);
  const row = await deps.ledger.getRow(batch, rowId);
  if (!row) {
    job.log.warn("row is not in the ledger (purged?): nothing to submit");
    return done;
  }
  const existingTaskId = row.taskIds[resubmit];
  if (existingTaskId !== undefined) {
    await ensurePoll(deps, job.data, existingTaskId, row.submittedAt ?? deps.clock.now());
    return done;
  }
  let data = job.data;
  if (data.creating !== undefined) {
    // The worker that ran this job last died (or lost it) with a create on the wire: KIE may have
    // made a task that was never recorded, and the row is about to be paid for again. Say so.
    await deps.ledger.transition(batch, rowId, { incr: { uncertain: 1 } });
    job.log.warn(
      "a create was on the wire when its worker stopped: the task may exist; counted as uncertain",
    );
    data = unmarked(data);
    await job.saveData?.(data);
  }
  if (row.status !== "queued") return done; // cancelled, or moved on by an operator

  if (row.creditsReserved <= 0) {
    const outcome = await deps.ledger.reserveBudget(batch, rowId, row.estimatedCredits);
    if (outcome === "over-budget") return delay(deps.settings.budgetRecheckMs ?? BUDGET_RECHECK_MS, data);
  }

  for (;;) {
    const gate = await waitForOpenGate(deps, job.signal, job.log);
    if (!(await deps.fleet.tryAcquireInFlight(key))) {
      await deps.clock.sleep(IN_FLIGHT_RECHECK_MS, job.signal);
      continue;
    }
    await deps.fleet.createSlot(job.signal);
    // The gate may have held this job for hours: a row cancelled meanwhile must not be paid for.
    const current = await deps.ledger.getRow(batch, rowId);
    if (current?.status !== "queued" || current.taskIds[resubmit] !== undefined) {
      await deps.fleet.releaseInFlight(key);
      if (current?.status === "cancelled") await deps.ledger.releaseReservation(batch, rowId);
      return done;
    }
    // Its lock may have lapsed while it waited (Redis away, a stalled event loop) and the job
    // gone to another worker, which creates the task itself: create only while this one holds the
    // job. (The in-flight slot is keyed by the job, so it is that worker's too: not released.)
    if (job.stillOwned && !(await job.stillOwned())) {
      throw new JobLostError(`job ${key} went to another worker while it waited: not submitted here`);
    }

    // Marked until the answer is handled here: if this process dies meanwhile, the next run of the
    // job finds the mark and counts the row uncertain.
    await job.saveData?.({ ...data, creating: deps.clock.now() });
    await failpoint("submit.before-create");
    let taskId: string;
    try {
      taskId = await deps.kie.submit(requestOf(row, key, deps), graceSignal(job.signal, SUBMIT_GRACE_MS));
    } catch (error) {
      await job.saveData?.(data);
      await deps.fleet.releaseInFlight(key);
      if (job.signal.aborted && !isKieError(error)) {
        // The create may be on KIE's side already: count it, and let the job come back later.
        await deps.ledger.transition(batch, rowId, { incr: { uncertain: 1 } });
        throw error;
      }
      if (!isKieError(error)) throw error;
      const next = await handleSubmitError(error, job, row, deps);
      if (next === "again") continue;
      return next;
    }

    await failpoint("submit.after-create");
    if (gate === "probe") {
      await deps.fleet.resume("usage-cap");
      job.log.info("usage-cap probe accepted: submissions resume");
    }
    // A success resets the 429/455 ladder, but only once the fleet's backoff has run out: a create
    // that was already on the wire when another submitter met a 429 says nothing about now, and
    // clearing a running backoff would send every waiting submitter into the limit again.
    // (Read-then-clear can drop a 429 that lands in between: one lost step, not a lost row.)
    if ((await deps.fleet.backoffRemaining()) === 0) await deps.fleet.clearBackoff();
    const submittedAt = deps.clock.now();
    const recorded = await recordWithRetry(job.log, { batch, rowId, taskId }, () =>
      deps.ledger.transition(batch, rowId, {
        // A row cancelled while its create was on the wire is paid for: it goes on.
        from: ["queued", "cancelled"],
        to: "submitted",
        addTaskId: taskId,
        set: { submittedAt, error: null },
      }),
    );
    await failpoint("submit.after-record");
    if (!recorded.ok) {
      // Another worker recorded a task for this row meanwhile (its lock lapsed mid-create), or an
      // operator purged it: this task is paid for too. Count it where the row still exists, so
      // the double payment is shown, and log the taskId so it can be found.
      if (recorded.row) await deps.ledger.transition(batch, rowId, { incr: { uncertain: 1 } });
      job.log.error(
        { taskId, status: recorded.row?.status },
        "task created but the row had changed: taskId not recorded, row counted as uncertain",
      );
      return done;
    }
    job.log.info({ taskId }, "submitted");
    await failpoint("submit.before-poll-add");
    await ensurePoll(deps, job.data, taskId, submittedAt);
    return done;
  }
}

/** The job's data without the create-on-the-wire mark. */
function unmarked(data: SubmitJob): SubmitJob {
  const { creating: _creating, ...rest } = data;
  return rest;
}

async function ensurePoll(deps: SubmitDeps, data: SubmitJob, taskId: string, submittedAt: number) {
  await deps.queues.addPoll(
    { batch: data.batch, rowId: data.rowId, resubmit: data.resubmit, taskId, submittedAt, checks: 0 },
    scaledPollDelay(0, deps.settings.pollFirstMs),
  );
}

function requestOf(row: RowRecord, key: string, deps: SubmitDeps): SubmitRequest {
  const params = row.params as unknown as GenerationParams;
  const request: SubmitRequest = { ...params, prompt: row.prompt };
  if (deps.settings.callbackUrl) request.callBackUrl = `${deps.settings.callbackUrl}/${key}`;
  return request;
}

/**
 * Fleet-wide conditions keep the job and loop ("again"); a row the API refuses fails; anything
 * transient is retried by BullMQ with backoff until the attempts run out.
 */
async function handleSubmitError(
  error: KieError,
  job: StageJob<SubmitJob>,
  row: RowRecord,
  deps: SubmitDeps,
): Promise<"again" | StageResult<SubmitJob>> {
  const { batch, rowId } = job.data;
  const log = job.log;
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
  if (error.maybeCreated) {
    await deps.ledger.transition(batch, rowId, { incr: { uncertain: 1 } });
    log.warn(
      { code: error.code },
      "submit answer lost: the task may exist; counted as uncertain and retried",
    );
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
  void row;
  return done;
}
