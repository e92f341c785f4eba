import type { RedisClient } from "../redis/script.js";
import { LedgerError } from "./errors.js";
import { type LedgerKeys, ledgerKeys } from "./keys.js";
import {
  decodeEntry,
  decodeJsonEntry,
  encodeEntry,
  encodeJsonEntry,
  type ResultEntry,
} from "./result-entry.js";
import { resultForgetScript } from "./scripts/index.js";

export type { ResultEntry } from "./result-entry.js";

/**
 * The deployment's result index: request hash (request-hash.ts) -> the archived object of a row
 * that asked for exactly that, so a later row with the same request is archived by copying that
 * object instead of paying for a new create (worker/reuse.ts).
 *
 * One STRING per entry with a TTL (`KIE_REUSE_TTL`, 30 days by default) renewed by every archive
 * of the same request: its key names the request hash in base64url (32 chars: 192 bits,
 * `KEY_HASH_BYTES`), its value is `|`-joined fields (result-entry.ts); ~170 B by
 * MEMORY USAGE for one image. Entries the previous version wrote (the hash in hex, a JSON value)
 * are still read for as long as they live (their TTL, 30 days at most): both keys share a hash tag,
 * so a lookup is one MGET of the two, a dry run's check one EXISTS of the two.
 *
 * Entries are written after a row's archive transition, as a command of their own (they live
 * under 16 hash tags of their own, never a batch's: keys.ts): a lost write only costs a future
 * reuse. An entry is a hint: the object it names is checked (HEAD,
 * size, task, checksum) before it is used.
 *
 * Entries are kept per API flavour (KIE_API_FLAVOR): the seed's `qwen` endpoints and the market
 * API are two services, and nothing documented promises that one answers a seed as the other
 * does, so a deployment never serves one's output for the other's request (a miss costs a create;
 * a wrong hit, a wrong image).
 */

export interface ResultIndex {
  /** The entry of `hash`, or undefined (none, expired, or unreadable). */
  lookup(hash: string): Promise<ResultEntry | undefined>;
  /** Per hash: whether an entry exists (one pipelined round trip; for `enqueue --dry-run`). */
  exists(hashes: readonly string[]): Promise<boolean[]>;
  /**
   * Writes (or replaces) the entry of `hash`, with the index's TTL. An entry that would exceed
   * `MAX_ENTRY_BYTES` (more images than `MAX_INDEXED_IMAGES`) is not written: returns false.
   */
  record(hash: string, entry: ResultEntry): Promise<boolean>;
  /** Removes the entry, only while it is still `entry` (another worker may have renewed it). */
  forget(hash: string, entry: ResultEntry): Promise<boolean>;
  /** True when the batch was enqueued with `--no-reuse` (its meta field `noReuse`). */
  reuseOff(batch: string): Promise<boolean>;
}

export interface ResultIndexOptions {
  /** The deployment's queue prefix. @defaultValue "kie" */
  prefix?: string;
  /** The API flavour the deployment's requests go to (KIE_API_FLAVOR): entries are kept per flavour. */
  flavor: string;
  /** How long an entry lives after its last write. @defaultValue RESULT_TTL_MS (30 days) */
  ttlMs?: number;
}

/** 30 days: the ledger's default TTL too (KIE_LEDGER_TTL); the store usually keeps objects longer. */
const RESULT_TTL_MS = 30 * 24 * 60 * 60 * 1000;
/** A row of more images than this is not indexed (bounds an entry's bytes). */
const MAX_INDEXED_IMAGES = 4;
/** The longest value an entry may have (keys are bounded by batch and row names: 128 chars each). */
const MAX_ENTRY_BYTES = 2048;

export function createResultIndex(redis: RedisClient, options: ResultIndexOptions): ResultIndex {
  const keys: LedgerKeys = ledgerKeys(options.prefix ?? "kie");
  const { flavor } = options;
  const keysOf = (hash: string) => entryKeys(keys, hash, flavor);
  keysOf("0".repeat(64)); // a flavour that cannot be in a key throws now, not at the first lookup
  const ttlMs = options.ttlMs ?? RESULT_TTL_MS;
  if (!(ttlMs > 0)) throw new LedgerError("invalid_value", "the result index TTL must be > 0");
  return {
    async lookup(hash) {
      const { key, jsonKey } = keysOf(hash);
      const [value, json] = await redis.mget(key, jsonKey);
      return (
        (value == null ? undefined : decodeEntry(value)) ?? (json == null ? undefined : decodeJsonEntry(json))
      );
    },
    async exists(hashes) {
      // One pipeline per hash tag (a Cluster refuses a pipeline across slots), all at once.
      const byTag = new Map<string, number[]>();
      hashes.forEach((hash, i) => {
        const at = byTag.get(hash.slice(0, 1));
        if (at) at.push(i);
        else byTag.set(hash.slice(0, 1), [i]);
      });
      const found: boolean[] = hashes.map(() => false);
      await Promise.all(
        [...byTag.values()].map(async (indexes) => {
          const pipeline = redis.pipeline();
          for (const i of indexes) {
            const { key, jsonKey } = keysOf(hashes[i]!);
            pipeline.exists(key, jsonKey);
          }
          const replies = (await pipeline.exec()) ?? [];
          indexes.forEach((i, n) => {
            const [error, count] = replies[n] ?? [new Error("no reply"), 0];
            if (error) throw error;
            found[i] = typeof count === "number" && count > 0;
          });
        }),
      );
      return found;
    },
    async record(hash, entry) {
      if (entry.images.length === 0 || entry.images.length > MAX_INDEXED_IMAGES) return false;
      const value = encodeEntry(entry);
      if (value === undefined || Buffer.byteLength(value, "utf8") > MAX_ENTRY_BYTES) return false;
      await redis.set(keysOf(hash).key, value, "PX", ttlMs);
      return true;
    },
    async forget(hash, entry) {
      // The entry was read from one of the two keys: each loses it only while it holds that value.
      const { key, jsonKey } = keysOf(hash);
      const value = encodeEntry(entry);
      if (value !== undefined && (await resultForgetScript.run(redis, [key], [value])) === 1) return true;
      return (await resultForgetScript.run(redis, [jsonKey], [encodeJsonEntry(entry)])) === 1;
    },
    async reuseOff(batch) {
      return (await redis.hget(keys.batch(batch), "noReuse")) === "1";
    },
  };
}

/** Every key an entry of `hash` may have (for tests and tools that remove entries). */
export function resultIndexKeys(prefix: string, hash: string, flavor: string): string[] {
  const { key, jsonKey } = entryKeys(ledgerKeys(prefix), hash, flavor);
  return [key, jsonKey];
}

/**
 * Bytes of the request hash an entry's key names: 192 of SHA-256's 256 bits, 32 base64url chars
 * (a key of 59 chars with prefix `kie`: jemalloc's 64-byte class, where the whole hash made 70
 * and 80). Nothing checks an entry's request against the row's (the checks before a reuse are of
 * the object against the entry), so the key alone must not collide: two different requests
 * share 192 bits with a chance of about n^2 / 2^193 among n entries (1e-40 for a billion), and
 * finding such a pair on purpose costs ~2^96 hashes.
 */
const KEY_HASH_BYTES = 24;

/**
 * The entry's key, and the key the previous version used (`keys.result`: the hash in hex). Both
 * have the hash tag of the hash's first hex digit, so one command may name the two.
 */
function entryKeys(keys: LedgerKeys, hash: string, flavor: string): { key: string; jsonKey: string } {
  const jsonKey = keys.result(hash, flavor); // checks the hash (64 hex) and the flavour
  const named = Buffer.from(hash, "hex").subarray(0, KEY_HASH_BYTES).toString("base64url");
  return { key: `${jsonKey.slice(0, -hash.length)}${named}`, jsonKey };
}
