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
 * The ids of every job of a batch in one queue, whatever its state: every job id of a batch
 * starts with `<batch>/` (see `jobKey`), resubmit lineages (`<batch>/<row>/r1`) included. It
 * reads the queue's state lists page by page, so it costs what the queue holds, not what the
 * whole Redis holds (a SCAN would walk every ledger row of every batch too).
 */
export async function batchJobIds(queue: Pick<Queue, "getRanges">, batch: string): Promise<string[]> {
  const head = batchKeyPrefix(checkName("batch", batch));
  const ids = new Set<string>();
  for (const type of JOB_TYPES) {
    for (let start = 0; ; start += PAGE) {
      const page = await queue.getRanges([type], start, start + PAGE - 1, true);
      for (const id of page) if (id.startsWith(head)) ids.add(id);
      if (page.length < PAGE) break;
    }
  }
  return [...ids].sort();
}
