import type { RedisClient as Redis } from "../redis/script.js";
import type { Stage } from "../worker/jobs.js";
import type { ReconcileJobs } from "../worker/reconcile-requeue.js";
import { jobPresence } from "./job-presence.js";
import type { QueueSet } from "./queues.js";

/** The reconciler's view of the queues; where a job id stands is `jobPresence`'s answer. */
export function reconcileJobs(
  queues: Pick<QueueSet, "queues" | "addSubmit" | "addSubmitBulk" | "addPoll">,
  redis: Pick<Redis, "pipeline">,
): ReconcileJobs {
  return {
    presence: (stage, keys) => jobPresence(queues.queues[stage], redis, keys),
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
