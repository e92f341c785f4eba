import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLedger, type Ledger, ledgerKeys } from "../../src/ledger/index.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

const images = [
  { key: "b1/r0.png", location: "/archive/b1/r0.png", bytes: 10, sha256: "aa", contentType: "image/png" },
  { key: "b1/r0-2.png", location: "/archive/b1/r0-2.png", bytes: 20, sha256: "bb", contentType: "image/png" },
];

let redis: Redis;
let prefix: string;
let ledger: Ledger;
let rowKey: string;

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(async () => {
  prefix = uniquePrefix();
  ledger = createLedger(redis, { prefix });
  rowKey = ledgerKeys(prefix).row("b1", "r0");
  await ledger.addRows("b1", [
    { id: "r0", line: 2, prompt: "a lighthouse", params: {}, metadata: {}, estimatedCredits: 8 },
  ]);
});
afterEach(async () => {
  await cleanupPrefix(redis, prefix);
});

describe("archived images in the row (issue 10: Redis bytes per row)", () => {
  it("are stored once, as tuples, and read back whole with the first image's location, size and checksum", async () => {
    const archived = await ledger.transition("b1", "r0", { to: "archived", set: { images, archivedAt: 99 } });
    const expected = { images, location: "/archive/b1/r0.png", bytes: 10, sha256: "aa" };
    expect(archived.row).toMatchObject(expected);
    expect(await ledger.getRow("b1", "r0")).toMatchObject(expected);
    // No field names per image, and the first image's values not stored a second time beside it:
    // in the row's body (row-body.ts), after its prompt, not in its hash.
    const body = (await redis.get(ledgerKeys(prefix).body("b1", "r0"))) ?? "";
    const [base, stored, ...rest] = body.split("\x1e");
    expect(JSON.parse(base!)).toEqual(["a lighthouse"]);
    expect(rest).toEqual([]);
    expect(stored!.slice(0, 1)).toBe("i");
    expect(await redis.hget(rowKey, "images")).toBeNull();
    expect(JSON.parse(stored!.slice(1))).toEqual([
      ["b1/r0.png", "/archive/b1/r0.png", 10, "aa", "image/png"],
      ["b1/r0-2.png", "/archive/b1/r0-2.png", 20, "bb", "image/png"],
    ]);
    expect(await redis.hmget(rowKey, "location", "bytes", "sha256")).toEqual([null, null, null]);
  });

  it("of a row written by an earlier version (objects, and the first image's fields beside them) read the same", async () => {
    await ledger.transition("b1", "r0", { to: "archived", set: { archivedAt: 99 } });
    await redis.hset(rowKey, {
      images: JSON.stringify(images),
      location: "/archive/b1/r0.png",
      bytes: "10",
      sha256: "aa",
    });
    expect(await ledger.getRow("b1", "r0")).toMatchObject({
      images,
      location: "/archive/b1/r0.png",
      bytes: 10,
      sha256: "aa",
    });
    // Archived again (a retry): the old fields go, the new images say it all.
    const again = [{ ...images[0]!, location: "/archive/b1/r0.v2.png", bytes: 11, sha256: "cc" }];
    const moved = await ledger.transition("b1", "r0", { set: { images: again } });
    expect(moved.row).toMatchObject({
      images: again,
      location: "/archive/b1/r0.v2.png",
      bytes: 11,
      sha256: "cc",
    });
    expect(await redis.hmget(rowKey, "location", "bytes", "sha256")).toEqual([null, null, null]);
  });
});
