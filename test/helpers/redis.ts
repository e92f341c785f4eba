/**
 * Shared Redis plumbing for integration tests: a unique queue prefix per test, and cleanup of
 * exactly that prefix's keys (SCAN + UNLINK). Never FLUSHALL/FLUSHDB: the Redis is shared.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A queue prefix no other test (or run) uses, e.g. `t-3f1c...`. */
export function uniquePrefix(label = "t"): string {
  return `${label}-${randomUUID()}`;
}

/** A client for test code; close it with `quit()` in `afterAll`. */
export function testRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
}

/** Escapes Redis glob characters so a prefix matches only itself. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/**
 * Every key of a prefix: the deployment's (`{P}:...`), each batch's (`{P:batch}:ledger:...`), each
 * queue's (`{P:stage}:stage:...`) and each task map entry's (`{P:task:id}`) alike. Sorted, for
 * readable assertions.
 */
export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const found = new Set<string>();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `{${globEscape(prefix)}[}:]*`, "COUNT", 1000);
    for (const key of keys) found.add(key);
    cursor = next;
  } while (cursor !== "0");
  return [...found].sort();
}

/** Deletes every key of the prefix; returns how many there were. */
export async function cleanupPrefix(redis: Redis, prefix: string): Promise<number> {
  const keys = await keysWithPrefix(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
  return keys.length;
}
