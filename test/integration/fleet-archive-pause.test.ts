/**
 * The deployment's archive pause in Redis (fleet/archive-pause.ts, pause.lua): a full disk's pause
 * keeps the free space its probe asks for as a field of its own, written on a pause already in
 * force too, so the probe never reads it from the words of the reason.
 */
import { afterAll, describe, expect, it } from "vitest";
import { ArchivePause } from "../../src/fleet/archive-pause.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../helpers/redis.js";

const redis = testRedis();
const prefix = uniquePrefix("apause");
afterAll(async () => {
  await cleanupPrefix(redis, `{${prefix}`);
  await redis.quit();
});

describe("archive pause", () => {
  it("keeps a full disk's floor, also when the disk fills during another outage's pause; resume clears it", async () => {
    const pause = new ArchivePause(redis, { queuePrefix: prefix });
    expect(await pause.pause("store-unavailable", "access denied", { probeEveryMs: 1_000 })).toBe(true);
    expect((await pause.get())?.minFreeBytes).toBeUndefined();
    // The disk fills meanwhile: the pause in force (its reason kept) now holds its probe for space.
    expect(
      await pause.pause("store-unavailable", "ENOSPC", { probeEveryMs: 1_000, minFreeBytes: 4_096 }),
    ).toBe(false);
    expect(await pause.get()).toMatchObject({ reason: "access denied", minFreeBytes: 4_096 });
    await pause.resume("store-unavailable");
    expect(await pause.get()).toBeNull();
    expect(await pause.pause("store-unavailable", "ENOSPC", { minFreeBytes: 8_192 })).toBe(true);
    expect(await pause.get()).toMatchObject({ reason: "ENOSPC", minFreeBytes: 8_192 });
  });

  it("keeps a checksum refusal's multipart probe, also when met during another outage's pause; resume clears it", async () => {
    const pause = new ArchivePause(redis, { queuePrefix: `${prefix}-mp` });
    expect(await pause.pause("store-unavailable", "access denied", { probeEveryMs: 1_000 })).toBe(true);
    expect((await pause.get())?.probeMultipart).toBeUndefined();
    expect(await pause.pause("store-unavailable", "checksums", { probeMultipart: true })).toBe(false);
    expect(await pause.get()).toMatchObject({ reason: "access denied", probeMultipart: true });
    await pause.resume("store-unavailable");
    expect(await pause.get()).toBeNull();
    expect(await pause.pause("store-unavailable", "checksums", { probeMultipart: true })).toBe(true);
    expect(await pause.get()).toMatchObject({ reason: "checksums", probeMultipart: true });
  });
});
