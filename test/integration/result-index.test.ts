/**
 * The result index on the real Redis: an entry round-trips, expires with its TTL, is bounded in
 * bytes (MEMORY USAGE, the figures the README gives), and `forget` removes only the entry the
 * caller found unusable, never one another worker wrote meanwhile. Entries are kept per API
 * flavour, and spread over 16 hash tags by the request hash's first hex digit. Entries the
 * previous version wrote (hex key, JSON value) are still read, counted and forgotten.
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
const tagOf = (hash: string, flavor: string) => `{${prefix}:reuse:results:${hash[0]}}:${flavor}:`;
/** The entry's key: 192 bits of the request hash, in base64url. */
const keyOf = (hash: string, flavor = "qwen") =>
  `${tagOf(hash, flavor)}${Buffer.from(hash, "hex").subarray(0, 24).toString("base64url")}`;
/** The key the previous version wrote: the hash in hex. */
const jsonKeyOf = (hash: string, flavor = "qwen") => `${tagOf(hash, flavor)}${hash}`;
/** The value the previous version wrote for `typical`, byte for byte. */
const typicalJson = () =>
  JSON.stringify({
    t: typical.taskId,
    b: typical.batch,
    r: typical.rowId,
    a: typical.archivedAt,
    i: typical.images.map((image) => [image.key, image.bytes, image.sha256, image.contentType]),
  });

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
/** `typical`, archived again by a later batch: the same request, another row and image key. */
const renewed: ResultEntry = {
  ...typical,
  batch: "later",
  rowId: "copy",
  images: [{ ...typical.images[0]!, key: "later/copy.png" }],
};

beforeEach(() => {
  prefix = uniquePrefix("results");
  index = createResultIndex(redis, { prefix, flavor: "qwen", ttlMs: 60_000 });
});
afterEach(async () => {
  await redis.del(keyOf(HASH), keyOf(OTHER), jsonKeyOf(HASH), jsonKeyOf(OTHER));
});
afterAll(async () => {
  await redis.quit();
});

describe("result index", () => {
  it("an entry round-trips and expires with the index's TTL", async () => {
    expect(await index.lookup(HASH)).toBeUndefined();
    expect(await index.record(HASH, typical)).toBe(true);
    expect(await index.lookup(HASH)).toEqual(typical);
    expect(keyOf(HASH)).toMatch(/:qwen:[A-Za-z0-9_-]{32}$/);
    expect(await redis.get(keyOf(HASH))).toBe(
      `${typical.archivedAt.toString(36)}|${typical.taskId}|${typical.batch}|${typical.rowId}|~.png|` +
        `${(1_234_567).toString(36)}|${Buffer.from("ab".repeat(32), "hex").toString("base64url")}|`,
    );
    const ttl = await redis.pttl(keyOf(HASH));
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await index.exists([OTHER, HASH])).toEqual([false, true]);
  });

  it("an entry costs about 300 bytes (MEMORY USAGE), 140 fewer than the JSON form, never more than about 1.1 KB", async () => {
    await index.record(HASH, typical);
    await redis.set(jsonKeyOf(HASH), typicalJson(), "PX", 60_000);
    const bytes = Number(await redis.memory("USAGE", keyOf(HASH)));
    const jsonBytes = Number(await redis.memory("USAGE", jsonKeyOf(HASH)));
    // This test's prefix is long; with "kie", 264 B against 392 (216 against 360 for a qwen task
    // id and a short batch and row name, BENCHMARKS.md).
    expect(bytes).toBeLessThanOrEqual(330);
    expect(jsonBytes - bytes).toBeGreaterThanOrEqual(140);
    await redis.del(jsonKeyOf(HASH));
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
    expect(Number(await redis.memory("USAGE", keyOf(HASH)))).toBeLessThanOrEqual(1_100); // JSON: ~2.2 KB
    // More images than an entry may hold: not indexed (the row is still archived, just not reusable).
    expect(await index.record(OTHER, { ...worst, images: [...worst.images, worst.images[0]!] })).toBe(false);
    expect(await index.lookup(OTHER)).toBeUndefined();
  });

  it("forget removes the entry the caller read, not one renewed meanwhile", async () => {
    await index.record(HASH, typical);
    await index.record(HASH, renewed);
    expect(await index.forget(HASH, typical)).toBe(false);
    expect(await index.lookup(HASH)).toEqual(renewed);
    expect(await index.forget(HASH, renewed)).toBe(true);
    expect(await index.lookup(HASH)).toBeUndefined();
  });

  it("a value this code cannot read is a miss, not an error", async () => {
    for (const value of ["{not json", "1|t|b|r|~.png|1|short|image/png", "1|t|b|r", "zz|t|b|r|~.png|1|"]) {
      await redis.set(keyOf(HASH), value, "PX", 60_000);
      expect(await index.lookup(HASH)).toBeUndefined();
    }
    await redis.del(keyOf(HASH));
    await redis.set(jsonKeyOf(HASH), "{not json", "PX", 60_000);
    expect(await index.lookup(HASH)).toBeUndefined();
    await redis.set(
      jsonKeyOf(HASH),
      JSON.stringify({ t: "x", b: "b", r: "r", a: 1, i: [["k", 1, "short", "image/png"]] }),
    );
    expect(await index.lookup(HASH)).toBeUndefined();
  });

  it("an entry the previous version wrote (hex key, JSON) is read, counted and forgotten; a newer one wins", async () => {
    await redis.set(jsonKeyOf(HASH), typicalJson(), "PX", 60_000);
    expect(await index.lookup(HASH)).toEqual(typical);
    expect(await index.exists([OTHER, HASH])).toEqual([false, true]);
    // A newer archive of the request writes the compact entry: that one is read.
    await index.record(HASH, renewed);
    expect(await index.lookup(HASH)).toEqual(renewed);
    // Found unusable, each goes only while it is what was read.
    expect(await index.forget(HASH, renewed)).toBe(true);
    expect(await index.lookup(HASH)).toEqual(typical);
    expect(await index.forget(HASH, { ...typical, taskId: "another" })).toBe(false);
    expect(await index.forget(HASH, typical)).toBe(true);
    expect(await redis.exists(keyOf(HASH), jsonKeyOf(HASH))).toBe(0);
    expect(await index.lookup(HASH)).toBeUndefined();
  });

  it("an entry with a field it cannot write in the compact form is not written (a future create, not a wrong read)", async () => {
    expect(await index.record(HASH, { ...typical, taskId: "a|b" })).toBe(false);
    expect(await index.record(HASH, { ...typical, images: [{ ...typical.images[0]!, key: "~x.png" }] })).toBe(
      false,
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
