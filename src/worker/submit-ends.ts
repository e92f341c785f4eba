import type { KeyRing } from "../fleet/key-ring.js";
import { PAUSE_POLICY } from "../fleet/policy.js";
import type { Ledger } from "../ledger/index.js";
import type { RowRecord } from "../ledger/types.js";
import { jobKey, type SubmitJob } from "./jobs.js";
import { firstPollDelay } from "./poll-schedule.js";
import type { FleetPort, StageQueues, WorkerSettings } from "./ports.js";
import { archiveFromIndex, type ReuseDeps } from "./reuse.js";
import { delay, done, JobLostError, type StageJob, type StageResult } from "./stage.js";

/**
 * BullMQ gave up on a submit job and its row was failed from `queued`: the row's reservation
 * goes back, or, when the job died with a create on the wire, stays as spent-uncertain.
 */
export async function giveUpSubmit(
  data: SubmitJob,
  deps: { ledger: Pick<Ledger, "keepUncertain" | "releaseReservation"> },
): Promise<void> {
  if (data.creating !== undefined)
    await deps.ledger.keepUncertain(data.batch, data.rowId, 0, undefined, {
      lineage: data.resubmit,
      mark: data.creating,
    });
  else await deps.ledger.releaseReservation(data.batch, data.rowId);
}

/**
 * A parked job is completed and removed now. A wake that came between the parking and the removal
 * could not add the row's job (its id was still taken): the row is queued, no longer parked, and
 * without a job, so it gets it here (an add under the same id is one job).
 */
export async function afterParked(
  data: SubmitJob,
  deps: {
    ledger: Pick<Ledger, "getRow" | "getBatch" | "releaseReservation">;
    queues: Pick<StageQueues, "addSubmit">;
  },
) {
  const row = await deps.ledger.getRow(data.batch, data.rowId);
  // A row cancelled in that window gives back what the wake reserved for it: nothing else would.
  if (row?.status === "cancelled" && row.creditsReserved > 0) {
    await deps.ledger.releaseReservation(data.batch, data.rowId);
    return;
  }
  if (row?.status !== "queued" || row.waitingBudget || row.taskIds[data.resubmit] !== undefined) return;
  // At the batch's priority, as a wake adds it (BullMQ runs a job without one first).
  const priority = (await deps.ledger.getBatch(data.batch))?.priority;
  await deps.queues.addSubmit(
    { batch: data.batch, rowId: data.rowId, resubmit: data.resubmit },
    { priority },
  );
}

/**
 * The submit stage's reuse step, before it reserves or takes a slot: done when the row was
 * reused (or moved on), a delay of one store probe when the store is out, undefined to create.
 */
export async function reuseStep(
  job: StageJob<SubmitJob>,
  row: RowRecord,
  deps: {
    reuse?: ReuseDeps | undefined;
    ledger: Pick<Ledger, "releaseReservation">;
    settings: Partial<Pick<WorkerSettings, "storeProbeMs">>;
  },
  data: SubmitJob,
): Promise<StageResult<SubmitJob> | undefined> {
  const reused = await archiveFromIndex(job, row, deps.reuse);
  const key = jobKey(data.batch, data.rowId, data.resubmit);
  if (reused === "lost")
    throw new JobLostError(`job ${key} went to another worker during a reuse: not archived here`);
  if (reused === "store-out") {
    // A woken parked row's reservation goes back while it waits (it may never need it: a reuse
    // costs nothing, and a create reserves anew), so it holds no budget from other rows meanwhile;
    // only while this worker holds the job (another may be creating with it now, as in reuse.ts).
    if (row.creditsReserved > 0) {
      if (job.stillOwned && !(await job.stillOwned()))
        throw new JobLostError(
          `job ${key} went to another worker while the store was out: its reservation stays`,
        );
      await deps.ledger.releaseReservation(data.batch, data.rowId);
    }
    return delay(deps.settings.storeProbeMs ?? PAUSE_POLICY["store-unavailable"].probeEveryMs, data);
  }
  return reused ? done : undefined;
}

/**
 * A submit job's in-flight slot, under every key of the deployment (a run that died may have taken
 * it under any, also one this worker lacks: a key removed from its configuration), given back when no run of the job will create anything: a worker killed while
 * its job waited for a rate slot, the row cancelled or purged meanwhile, left it counted against
 * the account's KIE_MAX_IN_FLIGHT for an hour (until stale), holding back every batch's creates.
 * Only for a job with no create on the wire (its caller's check): KIE may be running that task.
 * Keyed by the job, so never another job's slot; a slot not there is nothing.
 */
export async function releaseSlotsOf(
  deps: { fleet: Pick<FleetPort, "releaseInFlight">; keys?: KeyRing | undefined },
  key: string,
): Promise<void> {
  if (deps.keys?.releaseInFlightEverywhere) return deps.keys.releaseInFlightEverywhere(key);
  const fleets = deps.keys?.lanes.map((lane) => lane.fleet) ?? [deps.fleet];
  await Promise.all(fleets.map((fleet) => fleet.releaseInFlight(key)));
}

/**
 * The batch carries `cancel`'s or `purge`'s mark: nothing of it is created. A cancelled batch's
 * queued row is cancelled here, as the cancel's walk would have had it reached the row (a walk
 * still on its way, or cut short), and any reservation it holds goes back (transition.lua notes
 * it for the reconciler should this die first). A purged one's is left to the purge whole: its
 * row may be gone already, and a release would wake parked rows of a batch being deleted.
 */
export async function endForBatchMark(
  job: StageJob<SubmitJob>,
  deps: { ledger: Pick<Ledger, "transition" | "releaseReservation"> },
  mark: "cancelled" | "purging",
): Promise<StageResult<SubmitJob>> {
  const { batch, rowId } = job.data;
  if (mark === "purging") return done;
  const moved = await deps.ledger.transition(batch, rowId, { from: ["queued"], to: "cancelled" });
  if (!moved.ok) return done;
  job.log.info("the batch was cancelled: this row is cancelled, not created");
  await deps.ledger.releaseReservation(batch, rowId);
  return done;
}

/** The poll job of the row's task (an add under its id is one job): after a create, or found recorded. */
export async function ensurePoll(
  deps: { queues: Pick<StageQueues, "addPoll">; settings: Parameters<typeof firstPollDelay>[0] },
  data: SubmitJob,
  taskId: string,
  at: number,
  taskKey?: string,
) {
  const { batch, rowId, resubmit } = data;
  await deps.queues.addPoll(
    { batch, rowId, resubmit, taskId, submittedAt: at, checks: 0, ...(taskKey ? { taskKey } : {}) },
    firstPollDelay(deps.settings),
  );
}
