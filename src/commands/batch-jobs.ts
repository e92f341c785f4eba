import type { JobType, Queue } from "bullmq";
import { checkName } from "../ledger/index.js";
import { batchKeyPrefix } from "../worker/jobs.js";

/** Every state a job of ours can sit in (BullMQ 6 keeps a paused queue's jobs in `wait`). */
const JOB_TYPES: readonly JobType[] = [
  "wait",
  "prioritized",
  "delayed",
  "active",
  "failed",
  "completed",
  "waiting-children",
];

/** Ids read per round trip. */
const PAGE = 1000;

/**
 * Visits the ids of a batch's jobs in one queue, whatever their state, a page of the queue at a
 * time: every job id of a batch starts with `<batch>/` (see `jobKey`), resubmit lineages
 * (`<batch>/<row>/r1`) included. It reads the queue's state lists, so it costs what the queue
 * holds, not what the whole Redis holds (a SCAN would walk every ledger row of every batch too),
 * and holds one page, not every id of a million-row batch.
 *
 * `visit` returns how many of the ids it removed from the queue: the next page starts that much
 * earlier (the list closed up behind it). A job a worker takes meanwhile from before the page may
 * make one id slip past; it finds its row gone and ends by itself, and a second run removes it.
 */
export async function forEachBatchJobPage(
  queue: Pick<Queue, "getRanges">,
  batch: string,
  visit: (ids: string[]) => Promise<number>,
): Promise<void> {
  const head = batchKeyPrefix(checkName("batch", batch));
  for (const type of JOB_TYPES) {
    for (let start = 0; ; ) {
      const page = await queue.getRanges([type], start, start + PAGE - 1, true);
      const ids = page.filter((id) => id.startsWith(head));
      const removed = ids.length > 0 ? await visit(ids) : 0;
      if (page.length < PAGE) break;
      start += PAGE - removed;
    }
  }
}

/** How many jobs of the batch one queue holds, and the first `sample` of their ids (sorted). */
export async function countBatchJobs(
  queue: Pick<Queue, "getRanges">,
  batch: string,
  sample = 20,
): Promise<{ count: number; ids: string[] }> {
  const seen = new Set<string>();
  let count = 0;
  await forEachBatchJobPage(queue, batch, async (ids) => {
    for (const id of ids) {
      // A job moving between states while counted may be seen twice: only the sample dedupes.
      if (seen.has(id)) continue;
      count++;
      if (seen.size < sample) seen.add(id);
    }
    return 0;
  });
  return { count, ids: [...seen].sort() };
}
