import type { Queue } from "bullmq";
import type { RedisClient as Redis } from "../redis/script.js";
import type { JobPresence } from "../worker/reconcile-requeue.js";

/**
 * Where each job id stands in `queue`, read straight from BullMQ's keys, pipelined (a page of ids
 * costs one round trip, not one Lua script per id): the job's hash exists while BullMQ holds the
 * job in any state, and the `failed`/`completed` sets say which of those are finished. The
 * reconciler's check (reconcile-jobs.ts), and a resumed archive's (`QueueSet.archiveJobLive`).
 */
export async function jobPresence(
  queue: Pick<Queue, "toKey">,
  redis: Pick<Redis, "pipeline">,
  keys: readonly string[],
): Promise<JobPresence[]> {
  if (keys.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const key of keys) {
    pipeline.exists(queue.toKey(key));
    pipeline.zscore(queue.toKey("failed"), key);
    pipeline.zscore(queue.toKey("completed"), key);
  }
  const replies = (await pipeline.exec()) ?? [];
  return keys.map((_, i): JobPresence => {
    const [exists, failed, completed] = [0, 1, 2].map((k) => {
      const [err, value] = replies[i * 3 + k] ?? [null, null];
      if (err) throw err;
      return value;
    });
    if (exists !== 1) return "absent";
    if (failed !== null) return "failed";
    if (completed !== null) return "completed";
    return "live";
  });
}
