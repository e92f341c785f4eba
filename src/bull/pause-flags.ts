import type { RedisClient as Redis } from "../redis/script.js";
import { bullPrefix, type Stage } from "../worker/jobs.js";

/**
 * Each stage queue's BullMQ pause flag (the `paused` field of the queue's meta hash, what
 * `Queue.isPaused` reads), read without building a Queue: a BullMQ Queue writes its meta when it
 * is made, which a read-only `status` (under a mistyped queue prefix, say) should not.
 */
export function stagePauseFlags(
  redis: Pick<Redis, "hexists">,
  queuePrefix: string,
): Record<Stage, { isPaused(): Promise<boolean> }> {
  const flag = (stage: Stage) => ({
    isPaused: async () =>
      (await redis.hexists(`${bullPrefix(queuePrefix, stage)}:${stage}:meta`, "paused")) === 1,
  });
  return { submit: flag("submit"), poll: flag("poll"), archive: flag("archive") };
}
