/**
 * What the poll stage does with a task's final record, shared by its checks while the task is in
 * flight (poll.ts) and its late checks after KIE_MAX_WAIT (poll-late.ts): the status call itself,
 * and a success's move to `archiving` with its settle, then its archive.
 */
import { failpoint } from "../core/failpoints.js";
import { isKieError } from "../kie/errors.js";
import type { TaskRecord } from "../kie/types.js";
import type { RowState, Status } from "../ledger/types.js";
import { type ArchiveJob, jobKey, type PollJob } from "./jobs.js";
import type { PollDeps } from "./poll-deps.js";
import { chargedOverEstimate } from "./poll-settle.js";
import { done, type StageJob, type StageResult } from "./stage.js";

/**
 * The task's record. KIE's "generation failed" as the status call's own answer (code 501) is the
 * record of a failed generation (KIE-API.md: the task's end), handled as such by the caller: its
 * unstated cost settles at the row's estimate, then the resubmit rule.
 */
export async function taskRecord(
  kie: PollDeps["kie"],
  taskId: string,
  signal: AbortSignal,
): Promise<TaskRecord> {
  try {
    return await kie.getTask(taskId, signal);
  } catch (error) {
    if (!isKieError(error) || error.code !== "generation_failed") throw error;
    return {
      taskId,
      status: "failed",
      imageUrls: [],
      failCode: String(error.apiCode ?? 501),
      failMessage: error.message,
    };
  }
}

/**
 * A task that succeeded: the row moves from `from` to `archiving` with the task's cost settled
 * in the same call (made or refused) and its in-flight slot given back beside it, then it is
 * archived in this job when the process can, else handed to an archive job.
 */
export async function onSucceeded(
  job: StageJob<PollJob>,
  deps: PollDeps,
  row: RowState,
  record: TaskRecord,
  from: readonly Status[],
): Promise<StageResult<PollJob>> {
  const { batch, rowId, taskId } = job.data;
  const completedAt = record.completedAt ?? deps.clock.now();
  const [, moved] = await Promise.all([
    deps.fleet.releaseInFlight(jobKey(batch, rowId, job.data.resubmit)),
    deps.ledger.transition(batch, rowId, {
      from,
      ifTask: taskId,
      to: "archiving",
      // A row failed at KIE_MAX_WAIT carries that error: archived after all, it has none.
      set: from.includes("failed") ? { completedAt, error: null } : { completedAt },
      settle: { spent: record.creditsConsumed ?? row.estimatedCredits, taskId },
    }),
  ]);
  if (moved.settled === "settled") chargedOverEstimate(job, row, record);
  // A move whose reply was lost and that was sent again finds the row already archiving for
  // this task: it goes on to add the archive job, as the first answer would have.
  const ours = moved.row?.status === "archiving" && moved.row.taskId === taskId;
  if (!moved.ok && !ours) return done;
  if (record.imageUrls.length === 0) {
    await deps.ledger.transition(batch, rowId, {
      from: ["archiving"],
      ifTask: taskId,
      to: "failed",
      set: { error: `task ${taskId} succeeded without an image URL` },
    });
    return done;
  }
  await failpoint("poll.after-archiving");
  const archive: ArchiveJob = {
    batch,
    rowId,
    taskId,
    imageUrls: record.imageUrls,
    completedAt,
    ...(record.creditsConsumed === undefined ? {} : { creditsConsumed: record.creditsConsumed }),
    tries: 0,
  };
  // Archived here when the process can (one job a row less); else the archive stage's, as
  // before. The row as this move left it is passed on: archiving for this task, not read again.
  // An abort (shutdown) is thrown on: the job's next run finds the row archiving (resumeArchive).
  const inline = deps.archiveInline ? await deps.archiveInline(archive, job, moved.row) : undefined;
  if (inline === "done") return done;
  const { handOff, delayMs } = inline ?? { handOff: archive, delayMs: 0 };
  if (delayMs > 0) await deps.queues.addArchive(handOff, { delayMs });
  else await deps.queues.addArchive(handOff);
  // At debug: the final poll of most rows logs nothing at info, and makes no child logger.
  job.log.debug({ taskId }, "generated");
  return done;
}
