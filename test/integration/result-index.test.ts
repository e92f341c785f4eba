/**
 * The result index on the real Redis: an entry round-trips, expires with its TTL, is bounded in
 * bytes (MEMORY USAGE, the figures the README gives), and `forget` removes only the entry the
 * caller found unusable, never one another worker wrote meanwhile. Entries are kept per API
 * flavour, and spread over 16 hash tags by the request hash's first hex digit.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createResultIndex,
  type ResultEntry,
  type ResultIndex,
  requestHash,
} from "../../src/ledger/index.js";
import { testRedis, uniquePrefix } from "../helpers/redis.js";

const redis = testRedis();
let prefix: string;
let index: ResultIndex;
const HASH = requestHash("a red fox", { seed: 1 })!;
const OTHER = requestHash("a red fox", { seed: 2 })!;
const keyOf = (hash: string, flavor = "qwen") => `{${prefix}:reuse:results:${hash[0]}}:${flavor}:${hash}`;

const typical: ResultEntry = {
  images: [
    {
      key: "catalogue-2026-spring/sku-000123-hero.png",
      bytes: 1_234_567,
      sha256: "ab".repeat(32),
      contentType: "image/png",
    },
  ],
  taskId: "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
  batch: "catalogue-2026-spring",
  rowId: "sku-000123-hero",
  archivedAt: 1_765_000_000_000,
};

beforeEach(() => {
  prefix = uniquePrefix("results");
  index = createResultIndex(redis, { prefix, flavor: "qwen", ttlMs: 60_000 });
});
afterEach(async () => {
  await redis.del(keyOf(HASH), keyOf(OTHER));
});
afterAll(async () => {
  await redis.quit();
});

describe("result index", () => {
  it("an entry round-trips and expires with the index's TTL", async () => {
    expect(await index.lookup(HASH)).toBeUndefined();
    expect(await index.record(HASH, typical)).toBe(true);
    expect(await index.lookup(HASH)).toEqual(typical);
    const ttl = await redis.pttl(keyOf(HASH));
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await index.exists([OTHER, HASH])).toEqual([false, true]);
  });

  it("an entry costs about 400 bytes (MEMORY USAGE), and never more than about 2.2 KB", async () => {
    await index.record(HASH, typical);
    expect(Number(await redis.memory("USAGE", keyOf(HASH)))).toBeLessThanOrEqual(480); // ~400 with a short prefix such as "kie"
    const long = "x".repeat(128);
    const worst: ResultEntry = {
      images: [0, 1, 2, 3].map((i) => ({
        key: `${long}/${long}-${i + 1}.jpg`,
        bytes: 25_000_000,
        sha256: "cd".repeat(32),
        contentType: "image/jpeg",
      })),
      taskId: "t".repeat(256),
      batch: long,
      rowId: long,
      archivedAt: 1_765_000_000_000,
    };
    expect(await index.record(HASH, worst)).toBe(true);
    expect(Number(await redis.memory("USAGE", keyOf(HASH)))).toBeLessThanOrEqual(2_300);
    // More images than an entry may hold: not indexed (the row is still archived, just not reusable).
    expect(await index.record(OTHER, { ...worst, images: [...worst.images, worst.images[0]!] })).toBe(false);
    expect(await index.lookup(OTHER)).toBeUndefined();
  });

  it("forget removes the entry the caller read, not one renewed meanwhile", async () => {
    await index.record(HASH, typical);
    const renewed = {
      ...typical,
      batch: "later",
      rowId: "copy",
      images: [{ ...typical.images[0]!, key: "later/copy.png" }],
    };
    await index.record(HASH, renewed);
    expect(await index.forget(HASH, typical)).toBe(false);
    expect(await index.lookup(HASH)).toEqual(renewed);
    expect(await index.forget(HASH, renewed)).toBe(true);
    expect(await index.lookup(HASH)).toBeUndefined();
  });

  it("a value this code cannot read is a miss, not an error", async () => {
    await redis.set(keyOf(HASH), "{not json", "PX", 60_000);
    expect(await index.lookup(HASH)).toBeUndefined();
    await redis.set(
      keyOf(HASH),
      JSON.stringify({ t: "x", b: "b", r: "r", a: 1, i: [["k", 1, "short", "image/png"]] }),
    );
    expect(await index.lookup(HASH)).toBeUndefined();
  });

  it("entries are kept per API flavour: the other flavour's deployment does not see them", async () => {
    await index.record(HASH, typical);
    const jobs = createResultIndex(redis, { prefix, flavor: "jobs", ttlMs: 60_000 });
    expect(await jobs.lookup(HASH)).toBeUndefined();
    expect(await jobs.exists([HASH])).toEqual([false]);
    expect(await index.lookup(HASH)).toEqual(typical);
    expect(() => createResultIndex(redis, { prefix, flavor: "a b" })).toThrow(/API flavour/);
  });

  it("entries spread over 16 hash tags, one per first hex digit; exists answers across them in order", async () => {
    const hashes = Array.from({ length: 40 }, (_, i) => requestHash("spread", { seed: 1000 + i })!);
    expect(new Set(hashes.map((hash) => hash[0])).size).toBeGreaterThan(8);
    try {
      for (const hash of hashes.filter((_, i) => i % 3 === 0)) await index.record(hash, typical);
      expect(await index.exists(hashes)).toEqual(hashes.map((_, i) => i % 3 === 0));
      for (const hash of hashes.filter((_, i) => i % 3 === 0))
        expect(await redis.exists(keyOf(hash))).toBe(1);
    } finally {
      await redis.del(...hashes.map((hash) => keyOf(hash)));
    }
  });
});
