/**
 * The submit job's create-on-the-wire mark (`SubmitJob.creating`): stored, under the job's lock,
 * by the same call that asks whether this worker still holds the job, right before a create, and
 * cleared on every way out that sends none. A run that finds it follows a worker that died with a
 * create on the wire (submit.ts counts that attempt uncertain).
 */
import type { Ledger } from "../ledger/index.js";
import type { SubmitJob } from "./jobs.js";
import { JobLostError, type StageJob } from "./stage.js";

/**
 * Marks the job as creating, only while this worker holds it (`saveData` is fenced by the job's
 * lock): true when marked. A job run without BullMQ (no `saveData`) asks `stillOwned` alone.
 */
export async function markCreating(job: StageJob<SubmitJob>, data: SubmitJob, at: number): Promise<boolean> {
  if (job.saveData) return job.saveData({ ...data, creating: at });
  return job.stillOwned ? job.stillOwned() : true;
}

/**
 * Clears this attempt's mark before a way out without a create. A clear refused by the fence means
 * the job went to another worker after the mark (which that worker has counted): its slot and the
 * row's reservation are that worker's now, so this run stops here, touching neither.
 */
export async function unmark(job: StageJob<SubmitJob>, data: SubmitJob, key: string): Promise<void> {
  if (job.saveData && !(await job.saveData(data)))
    throw new JobLostError(`job ${key} went to another worker after its mark: left to that one`);
}

/** The job's data without the create-on-the-wire mark. */
function unmarked(data: SubmitJob): SubmitJob {
  const { creating: _creating, ...rest } = data;
  return rest;
}

/**
 * The job's data for this run. A mark found on it means the worker that ran it last died (or lost
 * it) with a create on the wire: KIE may have made and charged a task that was never recorded.
 * That attempt's reservation is kept as uncertain (so the next one reserves anew), once per
 * attempt (its mark: `cancel` or the reconciler may have counted it already), then the mark goes.
 */
export async function countDeadRunAttempt(
  job: StageJob<SubmitJob>,
  ledger: Pick<Ledger, "keepUncertain">,
  key: string,
): Promise<SubmitJob> {
  const { batch, rowId, resubmit, creating } = job.data;
  if (creating === undefined) return job.data;
  const kept = await ledger.keepUncertain(batch, rowId, 0, undefined, { lineage: resubmit, mark: creating });
  job.log.warn(
    { creditsUncertain: kept },
    "a create was on the wire when its worker stopped: the task may exist; counted as uncertain",
  );
  const data = unmarked(job.data);
  if (job.saveData && !(await job.saveData(data)))
    throw new JobLostError(`job ${key} went to another worker: that one submits it`);
  return data;
}
