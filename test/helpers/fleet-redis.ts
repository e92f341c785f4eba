import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { Clock } from "../../src/core/clock.js";
import { accountId, accountKeyPattern } from "../../src/fleet/account.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A random fake KIE key, so no two tests (or runs) share an account. */
export function fakeApiKey(): string {
  return `test-${randomBytes(16).toString("hex")}`;
}

export function connect(): Redis {
  return new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 3 });
}

/** Keys of the account behind `apiKey` still in Redis (for "leaves nothing behind" checks). */
export async function accountKeys(redis: Redis, apiKey: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(
      cursor,
      "MATCH",
      accountKeyPattern(accountId(apiKey)),
      "COUNT",
      1000,
    );
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found.sort();
}

/** Deletes every key of the account behind `apiKey` (SCAN + UNLINK; never FLUSHALL). */
export async function deleteAccountKeys(redis: Redis, apiKey: string): Promise<void> {
  const keys = await accountKeys(redis, apiKey);
  if (keys.length > 0) await redis.unlink(...keys);
}

/** A clock a test moves by hand: scripts read it (`scriptClock`), and its sleeps move it at once. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
}

/**
 * Hand it to a fleet part as both `clock` and `scriptClock`, so windows, probes, backoffs and
 * slot ages follow `advance` instead of real time. (Key TTLs still run on Redis's own clock: keep
 * windows long enough that none expires during a test.)
 */
export function manualClock(startMs = 1_700_000_000_000): ManualClock {
  let now = startMs;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
    async sleep(ms, signal) {
      signal?.throwIfAborted();
      now += ms;
    },
  };
}
