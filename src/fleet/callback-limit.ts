import { createHash } from "node:crypto";
import type { RedisClient } from "../redis/script.js";
import { accountKey } from "./account.js";

/** How often a callback may promote one task's poll. */
const CALLBACK_PROMOTE_EVERY_MS = 60_000;

/**
 * How often callbacks may wake one task's poll job, fleet-wide. A callback is only a hint, and
 * each promotion costs a status call out of the account's budget (KIE_POLL_RATE): without a
 * limit, anyone who learns a task id (and, without KIE_WEBHOOK_HMAC_KEY, anyone at all) could
 * spend that budget by posting callbacks in a loop. The poll's own schedule stays the safety net.
 */
export interface CallbackLimit {
  /** True for the first callback about `taskId` in the interval, across every worker; false after. */
  tryPromote(taskId: string): Promise<boolean>;
  /** Hands a promotion back unspent (it woke no poll), so the next callback about the task may. */
  giveBack(taskId: string): Promise<void>;
}

export interface CallbackLimitOptions {
  /** The account whose status budget the promotions spend; its tasks' keys live beside its fleet keys. */
  accountId: string;
  /** @defaultValue CALLBACK_PROMOTE_EVERY_MS (one minute) */
  everyMs?: number;
}

/**
 * One key per promoted task, set only if absent and expiring after the interval on the Redis
 * server's clock: one clock for the whole fleet, and nothing to clean up.
 */
export function createCallbackLimit(redis: RedisClient, options: CallbackLimitOptions): CallbackLimit {
  const everyMs = options.everyMs ?? CALLBACK_PROMOTE_EVERY_MS;
  const keyOf = (taskId: string) => accountKey(options.accountId, `callback:${taskDigest(taskId)}`);
  return {
    async tryPromote(taskId) {
      return (await redis.set(keyOf(taskId), "1", "PX", everyMs, "NX")) === "OK";
    },
    async giveBack(taskId) {
      await redis.del(keyOf(taskId));
    },
  };
}

/** Task ids are the provider's strings; a key name takes a short lowercase digest of one. */
function taskDigest(taskId: string): string {
  return createHash("sha256").update(taskId, "utf8").digest("hex").slice(0, 32);
}
