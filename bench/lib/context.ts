/**
 * What every bench group gets: the Redis (the bench's private one by default), sizes for the
 * chosen mode, unique prefixes and API keys (registered, so that the driver deletes their keys at
 * the end whichever Redis it is), and a temp folder removed at the end.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
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

/** When a bench last deleted its temp folder (epoch ms), read by the next one. */
const DELETED_AT = join(tmpdir(), "kie-bench-deleted-at");
/**
 * How long ext4 without a journal (this machine's root) treats a deleted inode as recent: 60 s,
 * 360 s while its inode table block is dirty. Each file created meanwhile steps over every such
 * inode of its block group, one inode-table lookup each (BENCHMARKS.md, "a trap").
 */
const RECENTLY_DELETED_MS = 6 * 60_000;

/** A warning when a bench deleted its files so recently that this run's file creates pay for it. */
async function recentDeleteWarning(): Promise<string | undefined> {
  const at = Number(await readFile(DELETED_AT, "utf8").catch(() => ""));
  const ago = Date.now() - at;
  if (!(at > 0) || ago >= RECENTLY_DELETED_MS) return undefined;
  return `note: a bench deleted its files ${Math.round(ago / 1000)} s ago: on ext4 without a journal, files created in the next ${RECENTLY_DELETED_MS / 60_000} minutes are slower (kie-batch's archive writes four a row, the baseline one), so CPU and rows/s figures lean against kie-batch; wait, or run with KIE_BENCH_KEEP_FILES=1 (BENCHMARKS.md)`;
}

export async function createContext(options: {
  quick: boolean;
  redisUrl: string;
  privateRedis: boolean;
}): Promise<BenchContext & { close(): Promise<number> }> {
  const warning = await recentDeleteWarning();
  if (warning) console.log(warning);
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
      // Kept on request: runs back to back then create files where none was just deleted (ext4's
      // inode allocator skips recently deleted inodes one by one for minutes: BENCHMARKS.md).
      if (process.env.KIE_BENCH_KEEP_FILES === "1") console.log(`temp folder kept: ${dir}`);
      else {
        await rm(dir, { recursive: true, force: true });
        await writeFile(DELETED_AT, String(Date.now()));
      }
      return deleted;
    },
  };
}
