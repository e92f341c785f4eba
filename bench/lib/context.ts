/**
 * What every bench group gets: the Redis (the bench's private one by default), sizes for the
 * chosen mode, unique prefixes and API keys (registered, so that the driver deletes their keys at
 * the end whichever Redis it is), and a temp folder removed at the end.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { accountId, accountKeyPattern } from "../../src/fleet/index.js";

export interface BenchContext {
  quick: boolean;
  redisUrl: string;
  /** True on the bench's own redis-server: global INFO counters are the bench's alone. */
  privateRedis: boolean;
  redis: Redis;
  /** A temp folder of this run (manifests, archives), removed at the end. */
  dir: string;
  newPrefix(label: string): string;
  /** A unique API key: the fleet keys of its account are the bench's own. */
  newApiKey(): string;
  /** Deletes one prefix's keys now (a group that is done with it). */
  dropPrefix(prefix: string): Promise<number>;
  log(message: string): void;
}

export async function createContext(options: {
  quick: boolean;
  redisUrl: string;
  privateRedis: boolean;
}): Promise<BenchContext & { close(): Promise<number> }> {
  const dir = await mkdtemp(join(tmpdir(), "kie-bench-"));
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 3 });
  const prefixes = new Set<string>();
  const apiKeys = new Set<string>();
  const dropPattern = async (pattern: string) => {
    let cursor = "0";
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 5000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
    return deleted;
  };
  return {
    ...options,
    redis,
    dir,
    newPrefix(label) {
      const prefix = `bench-${label}-${randomUUID().slice(0, 8)}`;
      prefixes.add(prefix);
      return prefix;
    },
    newApiKey() {
      const key = `bench-key-${randomUUID()}`;
      apiKeys.add(key);
      return key;
    },
    dropPrefix: (prefix) => dropPattern(`{${prefix}[}:]*`),
    log: (message) => console.log(message),
    async close() {
      let deleted = 0;
      for (const prefix of prefixes) deleted += await dropPattern(`{${prefix}[}:]*`);
      for (const key of apiKeys) deleted += await dropPattern(accountKeyPattern(accountId(key)));
      await redis.quit().catch(() => redis.disconnect());
      await rm(dir, { recursive: true, force: true });
      return deleted;
    },
  };
}
