import { retryDelay } from "../core/backoff.js";
import type { Clock } from "../core/clock.js";
import { isKieError } from "../kie/errors.js";
import type { KieApi, TaskRecord } from "../kie/types.js";
import type { RowRecord } from "../ledger/types.js";
import type { PollJob } from "./jobs.js";
import type { FleetPort, StageQueues } from "./ports.js";
import { delay, done, type StageJob, type StageResult } from "./stage.js";

/** What resuming an archive uses: a subset of the poll stage's ports. */
export interface ResumeArchiveDeps {
  kie: Pick<KieApi, "getTask">;
  fleet: Pick<FleetPort, "pollSlot">;
  queues: Pick<StageQueues, "addArchive">;
  clock: Pick<Clock, "now">;
}

/**
 * A poll job that finds its row already in `archiving` for its own task. Either an earlier run
 * moved the row and died before it added the archive job, or the reconciler found the row without
 * one and sent this poll: either way the archive job may be missing, and nothing else would add
 * it (invariant 1: every row ends). The task's URLs are not in the ledger, so ask KIE once more
 * and add the archive job; its id is the row's job key, so an archive job already there is kept
 * as it is and this costs one status call.
 */
export async function resumeArchive(
  job: StageJob<PollJob>,
  deps: ResumeArchiveDeps,
  row: RowRecord,
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  await deps.fleet.pollSlot(job.signal);
  let record: TaskRecord;
  try {
    record = await deps.kie.getTask(taskId, job.signal);
  } catch (error) {
    if (!isKieError(error) || !(error.retryable || error.fleetEffect !== undefined)) throw error;
    job.log.warn(
      { code: error.code, taskId },
      "status call failed while resuming an archive; trying again later",
    );
    return delay(retryDelay(job.data.checks), { ...job.data, checks: job.data.checks + 1 });
  }
  if (record.status !== "success" || record.imageUrls.length === 0) {
    // Nothing to archive from: leave the row to whichever job holds it (the reconciler looks again).
    job.log.warn({ taskId, status: record.status }, "row is archiving but its task has no images to archive");
    return done;
  }
  await deps.queues.addArchive({
    batch,
    rowId,
    taskId,
    imageUrls: record.imageUrls,
    completedAt: row.completedAt ?? record.completedAt ?? deps.clock.now(),
    ...(record.creditsConsumed === undefined ? {} : { creditsConsumed: record.creditsConsumed }),
    tries: 0,
  });
  job.log.info({ taskId }, "row was archiving without a sure archive job: archive job added");
  return done;
}
