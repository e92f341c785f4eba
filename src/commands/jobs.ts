import type { OpsQueues } from "../report/types.js";
import type { Stage } from "../worker/jobs.js";

/**
 * Clearing a stage job out of the way. BullMQ hands back the existing job when an id is taken
 * (failed jobs are kept a week), so an operator who puts a row back into the pipeline must remove
 * the old job of that id first, or the new one is silently never created.
 */
export type RemoveOutcome =
  /** No job had that id. */
  | "absent"
  | "removed"
  /** A worker holds the job (it is running): BullMQ refuses to remove it. */
  | "active";

export async function removeStageJob(queues: OpsQueues, stage: Stage, id: string): Promise<RemoveOutcome> {
  const queue = queues.queues[stage];
  if ((await queue.getJobState(id)) === "unknown") return "absent";
  // 1: removed (or gone meanwhile); 0: locked by a worker.
  return (await queue.remove(id)) === 1 ? "removed" : "active";
}

/**
 * Removes a submit job as `removeStageJob` does, and says whether it carried the mark of a create
 * on the wire (`creating`, submit.ts): a job left by a worker that died mid-create (its lock has
 * lapsed, so BullMQ no longer refuses the removal), whose attempt KIE may have made and charged.
 * Read before the removal, which takes the job's data with it.
 */
export async function removeSubmitJob(
  queues: OpsQueues,
  id: string,
  /**
   * Run once for a marked job that is not a running one's: before the removal when no worker holds
   * its lock (what the mark means, an attempt KIE may have charged, is recorded while the job that
   * says so still exists, so a caller stopped between the two steps loses nothing: the reconciler
   * would give back the reservation of a cancelled row with no job), else after a removal that
   * went through. A job a worker holds is left to that worker, which counts its own attempt.
   */
  onCreateOnWire?: (creating: number) => Promise<void>,
  /** Whether a worker holds the job's lock now; absent: the count waits for a removal that went through. */
  locked?: (id: string) => Promise<boolean>,
): Promise<{ outcome: RemoveOutcome; createOnWire: boolean }> {
  const queue = queues.queues.submit;
  const job = await queue.getJob(id);
  if (!job) return { outcome: "absent", createOnWire: false };
  const creating = (job.data as { creating?: unknown } | undefined)?.creating;
  const createOnWire = creating !== undefined;
  let counted = false;
  if (createOnWire && onCreateOnWire && locked && !(await locked(id))) {
    await onCreateOnWire(Number(creating));
    counted = true;
  }
  // 1: removed (or gone meanwhile); 0: locked by a worker.
  const outcome = (await queue.remove(id)) === 1 ? "removed" : "active";
  if (createOnWire && outcome === "removed" && !counted) await onCreateOnWire?.(Number(creating));
  return { outcome, createOnWire };
}

/** Runs `fn` over an async iterable with at most `limit` calls in flight; the first error wins. */
export async function forEachLimit<T>(
  items: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failed = false;
  let failure: unknown;
  for await (const item of items) {
    if (failed) break;
    const task: Promise<void> = fn(item)
      .catch((error: unknown) => {
        if (!failed) {
          failed = true;
          failure = error;
        }
      })
      .finally(() => running.delete(task));
    running.add(task);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failed) throw failure;
}

/** A list as an async iterable, for `forEachLimit`. */
export async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
