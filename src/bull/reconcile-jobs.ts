import type { Queue } from "bullmq";
import type { RedisClient as Redis } from "../redis/script.js";
import type { Stage } from "../worker/jobs.js";
import type { JobPresence, ReconcileJobs } from "../worker/reconcile-requeue.js";
import type { QueueSet } from "./queues.js";

/**
 * The reconciler's view of the queues. Where a job id stands is read straight from BullMQ's keys,
 * pipelined (a page of ids costs one round trip, not one Lua script per id): the job's hash exists
 * while BullMQ holds the job in any state, and the `failed`/`completed` sets say which of those
 * are finished.
 */
export function reconcileJobs(
  queues: Pick<QueueSet, "queues" | "addSubmit" | "addSubmitBulk" | "addPoll">,
  redis: Pick<Redis, "pipeline">,
): ReconcileJobs {
  return {
    async presence(stage, keys) {
      if (keys.length === 0) return [];
      const queue: Pick<Queue, "toKey"> = queues.queues[stage];
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
    },
    async removeFinished(stage: Stage, key: string) {
      await queues.queues[stage].remove(key);
    },
    async failedJobData(stage: Stage, key: string) {
      const job = await queues.queues[stage].getJob(key);
      return job ? (job.data as Record<string, unknown>) : undefined;
    },
    addSubmit: (data, options) => queues.addSubmit(data, options),
    addSubmitBulk: (jobs, options) => queues.addSubmitBulk(jobs, options),
    addPoll: (data, delayMs) => queues.addPoll(data, delayMs),
  };
}
