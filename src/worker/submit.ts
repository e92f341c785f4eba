import type { Clock } from "../core/clock.js";
import { failpoint } from "../core/failpoints.js";
import type { KeyRing } from "../fleet/key-ring.js";
import { isKieError } from "../kie/errors.js";
import type { GenerationParams, KieApi } from "../kie/types.js";
import type { Ledger } from "../ledger/index.js";
import { afterAccepted, gateStillOpen } from "./gate.js";
import { forgetRefusedUpload, uploadInputImage } from "./input-image-step.js";
import { jobKey, type SubmitJob, submitJobSchema } from "./jobs.js";
import { chooseKey } from "./key-choice.js";
import type { FleetPort, InputImagePort, StageQueues, WorkerSettings } from "./ports.js";
import { recordWithRetry } from "./record.js";
import type { ReuseDeps } from "./reuse.js";
import {
  done,
  graceSignal,
  JobLostError,
  parked,
  type StageDefinition,
  type StageJob,
  type StageResult,
} from "./stage.js";
import {
  afterParked,
  endForBatchMark,
  ensurePoll,
  giveUpSubmit,
  releaseSlotsOf,
  reuseStep,
} from "./submit-ends.js";
import { countIfMaybeCreated, handleSubmitError } from "./submit-errors.js";
import { countDeadRunAttempt, markCreating, unmark } from "./submit-mark.js";
import { requestOf } from "./submit-request.js";

/** The ledger calls the submit stage makes. */
type SubmitLedger = Pick<
  Ledger,
  | "getRow"
  | "getRowState"
  | "transition"
  | "reserveBudget"
  | "releaseReservation"
  | "keepUncertain"
  | "batchMarks"
>;

/**
 * What the submit stage uses of the worker's ports: a test fakes just these. The fleet and KIE
 * stay whole: the gate consults the fleet's pauses and probes the credit balance.
 */
export interface SubmitDeps {
  kie: KieApi;
  ledger: SubmitLedger;
  fleet: FleetPort;
  /** The worker's keys: a create goes out with whichever has a slot soonest. Absent: `kie` and `fleet`. */
  keys?: KeyRing;
  queues: Pick<StageQueues, "addPoll">;
  /** The result index and what reusing needs (reuse.ts). Absent: reuse is off (KIE_REUSE=off). */
  reuse?: ReuseDeps;
  /** Uploads local input images (image-to-image, edit). Absent: such rows fail with a clear reason. */
  inputImages?: InputImagePort;
  clock: Clock;
  settings: Pick<WorkerSettings, "pollFirstMs" | "callbackUrl" | "creditsProbeMs" | "usageCapProbeMs"> &
    Partial<Pick<WorkerSettings, "maxWaitMs" | "storeProbeMs">>;
}

export const submitStage = {
  name: "submit",
  schema: submitJobSchema,
  run: runSubmit,
  owns: ["queued"] as const,
  onGiveUp: giveUpSubmit,
  onParked: afterParked,
} satisfies StageDefinition<SubmitJob>;

/** With KIE_MAX_IN_FLIGHT reached, a submitter looks for room this often. */
export const IN_FLIGHT_RECHECK_MS = 2_000;
/** On shutdown, a create already on the wire gets this long to come back before it is aborted. */
const SUBMIT_GRACE_MS = 10_000;

/**
 * The submit stage: one create request per row (per resubmit lineage), at the account's rate.
 *
 * Invariants kept here (docs: README "Promises"):
 * - once a taskId is recorded for a lineage, that lineage is never submitted again, whatever
 *   crashes: the check below runs before any gate, so a retried or recovered job finds the taskId
 *   and only makes sure the poll job exists;
 * - every create attempt holds its own reservation of the batch's budget; an attempt that may have
 *   been charged unseen (answer lost, worker dead with it on the wire) keeps it as spent-uncertain,
 *   so the next attempt reserves again: KIE never charges a batch past its budget;
 * - a created task's id is logged at info the moment it is known and recorded before any other
 *   Redis call, retried for as long as this worker holds the job;
 * - the gate (pause, 429/455 backoff) is read again after the rate slot, right before the request.
 */
export async function runSubmit(job: StageJob<SubmitJob>, deps: SubmitDeps): Promise<StageResult<SubmitJob>> {
  const { batch, rowId, resubmit } = job.data;
  const key = jobKey(batch, rowId, resubmit);
  const row = await deps.ledger.getRow(batch, rowId);
  if (!row) {
    job.log.warn("row is not in the ledger (purged?): nothing to submit");
    if (job.data.creating === undefined) await releaseSlotsOf(deps, key);
    return done;
  }
  const existingTaskId = row.taskIds[resubmit];
  if (existingTaskId !== undefined) {
    const at = row.submittedAt ?? deps.clock.now();
    await ensurePoll(deps, job.data, existingTaskId, at, row.taskKeys?.[existingTaskId]);
    return done;
  }
  const data = await countDeadRunAttempt(job, deps.ledger, key);
  if (row.status !== "queued") {
    // Cancelled or failed without a create of this lineage: its reservation and slot go back.
    if ((row.status === "cancelled" || row.status === "failed") && row.creditsReserved > 0)
      await deps.ledger.releaseReservation(batch, rowId);
    if (job.data.creating === undefined) await releaseSlotsOf(deps, key);
    return done; // or moved on by an operator
  }
  // A request archived before is copied from there: no reservation, no rate slot, no create.
  const reused = await reuseStep(job, row, deps, data);
  if (reused) return reused;

  let reuploaded = false;
  for (;;) {
    const params = row.params as unknown as GenerationParams;
    // One reservation per attempt (a no-op while this attempt's is still held).
    const outcome = await deps.ledger.reserveBudget(batch, rowId, row.estimatedCredits);
    // Parked by the ledger (over the budget): this job ends, and the row costs nothing until a
    // raised budget or a released reservation wakes it with a new job (budget-wake.ts).
    if (outcome === "over-budget") return parked;
    // `purge` is deleting the batch, or `cancel` marked it: nothing of it is created any more.
    if (outcome === "purging" || outcome === "cancelled") {
      if (job.data.creating === undefined) await releaseSlotsOf(deps, key);
      return endForBatchMark(job, deps, outcome);
    }

    // A local input image is uploaded (or its upload reused) before the key choice, by the first
    // key whose gate lets uploads go (any key's upload serves every key's create): no in-flight or
    // rate slot is held during an upload (up to 10 MiB), and no upload sits between a slot and its
    // create (with several keys the choice takes the create slot at once).
    const input = await uploadInputImage(params, job, deps);
    if (input.next !== undefined) return input.next;
    const imageUrl = input.imageUrl;
    const chosen = await chooseKey(deps, key, job.signal, job.log);
    if (!chosen) {
      await deps.clock.sleep(IN_FLIGHT_RECHECK_MS, job.signal);
      continue;
    }
    // Every fleet call from here on is the chosen key's: its gate, its pause, its slots.
    const { passed: gate, fleet, kie } = chosen;
    /** The gate as read right before the create (afterAccepted skips the ladder reset without one). */
    let gateRead: { backoffSet?: boolean } = {};
    /** This attempt's mark, once asked for: whether it was stored. */
    let marking: Promise<boolean> | undefined;
    let markedAt: number | undefined;
    try {
      // The gate as read with the admission, where the limiter reads it (one key, its own account).
      const admitted = await chosen.slot(job.signal);
      // The three checks between the slot and the request go out together: every round trip
      // here is time between the limiter's admission and KIE's arrival, which its margin covers.
      // The job is marked as creating by the same call that asks whether this worker still holds
      // it (its lock may have lapsed while it waited: Redis away, a stalled event loop): marked
      // until the answer is handled here, so if this process dies meanwhile, the next run of the
      // job finds the mark and counts the attempt uncertain; and a run that lost the job can
      // write no mark, so it never creates unmarked.
      markedAt = deps.clock.now();
      marking = markCreating(job, data, markedAt);
      const [current, owned, now, marks] = await Promise.all([
        // Its state only: the status and tasks decide, and the request was made from `row`.
        deps.ledger.getRowState(batch, rowId),
        marking,
        admitted ?? fleet.readGate(),
        deps.ledger.batchMarks(batch),
      ]);
      gateRead = now;
      // The job went to another worker, which creates the task itself: nothing was marked here.
      // (The in-flight slot is keyed by the job, so it is that worker's too: kept.)
      if (!owned) {
        throw new JobLostError(`job ${key} went to another worker while it waited: not submitted here`);
      }
      // The gate may have held this job for hours: a row cancelled meanwhile must not be paid for.
      // (The mark goes first: a death before it counts this attempt uncertain, never a create lost.)
      // So must one of a batch cancelled or being purged meanwhile (its walk not at the row yet).
      const stale = current?.status !== "queued" || current.taskIds[resubmit] !== undefined;
      const mark = marks?.purging ? "purging" : marks?.cancelled ? "cancelled" : undefined;
      if (stale || mark) {
        await unmark(job, data, key);
        await fleet.releaseInFlight(key);
        if (!stale && mark) return endForBatchMark(job, deps, mark);
        if (current?.status === "cancelled") await deps.ledger.releaseReservation(batch, rowId);
        return done;
      }
      // The rate slot may have taken seconds: a pause or backoff set meanwhile stops this create;
      // so does a window filled meanwhile (an outage waited through): KIE counts a create when it
      // arrives, and a late one's slot moves to now (createLeaving: the rate promise).
      const stopped = !gateStillOpen(gate, now)
        ? "submissions were paused while this create waited for its rate slot: not sent"
        : (await fleet.createLeaving?.(job.signal)) === false
          ? "the rate window filled while this create waited after its slot: not sent"
          : undefined;
      if (stopped) {
        await unmark(job, data, key);
        await fleet.releaseInFlight(key);
        job.log.info({ pause: now.paused?.kind, backoffMs: now.backoffMs }, stopped);
        continue;
      }
    } catch (error) {
      // A slot taken just before an abort (shutdown) or a failed Redis call goes back now, not an
      // hour later as stale, and a mark this run may have stored goes too (no create was sent;
      // fenced, so never another run's). A job lost to another worker leaves both to that worker.
      if (!(error instanceof JobLostError)) {
        // The clear goes after the mark's own answer (never ahead of it on a retried connection);
        // a mark whose answer was lost may be stored, so it is cleared too.
        if (marking) {
          // A mark refused: the job is another worker's, and so is its slot: left alone.
          if ((await marking.catch(() => undefined)) === false) throw error;
          await job.saveData?.(data).catch(() => undefined);
        }
        await fleet.releaseInFlight(key).catch(() => undefined);
      }
      throw error;
    }
    await failpoint("submit.before-create");
    let taskId: string;
    try {
      taskId = await kie.submit(
        requestOf(row, key, deps.settings, imageUrl),
        graceSignal(job.signal, SUBMIT_GRACE_MS),
      );
    } catch (error) {
      await fleet.releaseInFlight(key);
      // Counted before the mark goes.
      await countIfMaybeCreated(error, job, deps.ledger, markedAt);
      await job.saveData?.(data);
      if (!isKieError(error)) throw error;
      // Refused as invalid with an uploaded input image: once, a fresh upload and another create.
      if (!reuploaded && (await forgetRefusedUpload(error, params, deps, job.log))) {
        reuploaded = true;
        continue;
      }
      const keyId = chosen.id === undefined ? {} : { keyId: chosen.id };
      const next = await handleSubmitError(error, job, { ...deps, fleet, ...keyId });
      if (next === "again") continue;
      return next;
    }

    // Invariant 3: the task id is in the log the moment it is known, before any Redis call.
    job.log.info({ taskId, resubmit, ...(chosen.id ? { key: chosen.id } : {}) }, "task created");
    await failpoint("submit.after-create");
    const submittedAt = deps.clock.now();
    const recorded = await recordWithRetry(
      job,
      deps.clock,
      { batch, rowId, taskId },
      () =>
        deps.ledger.transition(batch, rowId, {
          // A row cancelled while its create was on the wire is paid for: it goes on.
          from: ["queued", "cancelled"],
          to: "submitted",
          addTaskId: taskId,
          // The row is read only when the record is refused (below): a success needs nothing of it.
          rowOnRefusal: true,
          ...(chosen.id ? { taskKey: chosen.id } : {}),
          set: { submittedAt, error: null },
        }),
      graceSignal(job.signal, SUBMIT_GRACE_MS),
    );
    await failpoint("submit.after-record");
    await afterAccepted(gate, fleet, job.log, gateRead);
    // A record whose reply was lost and that was sent again (a reconnect, a retry) finds its own
    // task already recorded: that is a success, not another worker's task.
    const ours = !recorded.ok && recorded.row?.taskIds[resubmit] === taskId;
    if (!recorded.ok && !ours) {
      // Another worker recorded a task for this row meanwhile (its lock lapsed mid-create), or an
      // operator purged it: this task is paid for too. Count it where the row still exists, so
      // the double payment is shown and held against the budget; the taskId is in the log.
      if (recorded.row) await deps.ledger.keepUncertain(batch, rowId, row.estimatedCredits);
      else await fleet.releaseInFlight(key);
      job.log.error(
        { taskId, status: recorded.row?.status },
        "task created but the row had changed: taskId not recorded, row counted as uncertain",
      );
      return done;
    }
    if (recorded.unreplicated) {
      job.log.warn(
        { taskId, unreplicated: recorded.unreplicated },
        "task recorded but not confirmed on a replica: a failover of its master now could lose the record (its poll records it again)",
      );
    }
    // At debug: "task created" (info, above) and "archived" are the row's lines at info.
    job.log.debug({ taskId }, "submitted");
    await failpoint("submit.before-poll-add");
    await ensurePoll(deps, job.data, taskId, submittedAt, chosen.id);
    return done;
  }
}
