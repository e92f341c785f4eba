import type { Job } from "bullmq";
import { type RedisClient, RedisScript } from "../redis/script.js";

const saveIfOwnedScript = RedisScript.fromFile(new URL("./scripts/save-data-if-owned.lua", import.meta.url));

/**
 * Stores `data` as the job's data only while `token` holds the job's lock, extending the lock as
 * BullMQ's `extendLock` does (one script, one round trip): true when stored, false when another
 * worker may run the job now (nothing written). `job.data` follows what was stored, so a `failed`
 * event later sees it. Without a token (a job processed by hand) it is BullMQ's `updateData`.
 */
export async function saveDataIfOwned(
  redis: RedisClient,
  job: Job,
  token: string | undefined,
  lockMs: number,
  data: object,
): Promise<boolean> {
  if (token === undefined) {
    await job.updateData(data);
    return true;
  }
  const id = job.id ?? "";
  const queue = job.queueQualifiedName;
  const keys = [`${queue}:${id}:lock`, `${queue}:stalled`, `${queue}:${id}`];
  const stored = (await saveIfOwnedScript.run(redis, keys, [token, lockMs, id, JSON.stringify(data)])) === 1;
  if (stored) job.data = data;
  return stored;
}
