import type { RedisClient } from "../redis/script.js";
import { LedgerError } from "./errors.js";
import { type LedgerKeys, ledgerKeys } from "./keys.js";
import { resultForgetScript } from "./scripts/index.js";

/**
 * The deployment's result index: request hash (request-hash.ts) -> the archived object of a row
 * that asked for exactly that, so a later row with the same request is archived by copying that
 * object instead of paying for a new create (worker/reuse.ts).
 *
 * One STRING per entry, compact JSON, with a TTL (`KIE_REUSE_TTL`, 30 days by default) renewed by
 * every archive of the same request. Entries are written after a row's archive transition, as a
 * command of their own (they live under 16 hash tags of their own, never a batch's: keys.ts): a
 * lost write only costs a future reuse. An entry is a hint: the object it names is checked (HEAD,
 * size, task, checksum) before it is used.
 *
 * Entries are kept per API flavour (KIE_API_FLAVOR): the seed's `qwen` endpoints and the market
 * API are two services, and nothing documented promises that one answers a seed as the other
 * does, so a deployment never serves one's output for the other's request (a miss costs a create;
 * a wrong hit, a wrong image).
 */

/** One archived image of an entry. */
interface ResultImage {
  /** The store key (`batch/row.png`); the location is the store's `locationOf(key)`. */
  key: string;
  bytes: number;
  sha256: string;
  contentType: string;
}

export interface ResultEntry {
  images: ResultImage[];
  /** The task that generated the images. */
  taskId: string;
  /** The row the images were archived for. */
  batch: string;
  rowId: string;
  /** Epoch ms. */
  archivedAt: number;
}

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
  const keyOf = (hash: string) => keys.result(hash, flavor);
  keyOf("0".repeat(64)); // a flavour that cannot be in a key throws now, not at the first lookup
  const ttlMs = options.ttlMs ?? RESULT_TTL_MS;
  if (!(ttlMs > 0)) throw new LedgerError("invalid_value", "the result index TTL must be > 0");
  return {
    async lookup(hash) {
      const value = await redis.get(keyOf(hash));
      return value === null ? undefined : decodeEntry(value);
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
          for (const i of indexes) pipeline.exists(keyOf(hashes[i]!));
          const replies = (await pipeline.exec()) ?? [];
          indexes.forEach((i, n) => {
            const [error, count] = replies[n] ?? [new Error("no reply"), 0];
            if (error) throw error;
            found[i] = count === 1;
          });
        }),
      );
      return found;
    },
    async record(hash, entry) {
      if (entry.images.length === 0 || entry.images.length > MAX_INDEXED_IMAGES) return false;
      const value = encodeEntry(entry);
      if (Buffer.byteLength(value, "utf8") > MAX_ENTRY_BYTES) return false;
      await redis.set(keyOf(hash), value, "PX", ttlMs);
      return true;
    },
    async forget(hash, entry) {
      return (await resultForgetScript.run(redis, [keyOf(hash)], [encodeEntry(entry)])) === 1;
    },
    async reuseOff(batch) {
      return (await redis.hget(keys.batch(batch), "noReuse")) === "1";
    },
  };
}

/** `{"t":task,"b":batch,"r":row,"a":ms,"i":[[key,bytes,sha256,contentType],...]}` */
function encodeEntry(entry: ResultEntry): string {
  return JSON.stringify({
    t: entry.taskId,
    b: entry.batch,
    r: entry.rowId,
    a: entry.archivedAt,
    i: entry.images.map((image) => [image.key, image.bytes, image.sha256, image.contentType]),
  });
}

/** The entry, or undefined for a value this code cannot read (an older or damaged entry: a miss). */
function decodeEntry(value: string): ResultEntry | undefined {
  try {
    const raw = JSON.parse(value) as { t?: unknown; b?: unknown; r?: unknown; a?: unknown; i?: unknown };
    if (typeof raw.t !== "string" || typeof raw.b !== "string" || typeof raw.r !== "string") return undefined;
    if (typeof raw.a !== "number" || !Array.isArray(raw.i) || raw.i.length === 0) return undefined;
    const images: ResultImage[] = [];
    for (const item of raw.i as unknown[]) {
      if (!Array.isArray(item)) return undefined;
      const [key, bytes, sha256, contentType] = item as unknown[];
      if (typeof key !== "string" || typeof bytes !== "number" || typeof contentType !== "string")
        return undefined;
      if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
      images.push({ key, bytes, sha256, contentType });
    }
    return { images, taskId: raw.t, batch: raw.b, rowId: raw.r, archivedAt: raw.a };
  } catch {
    return undefined;
  }
}
