/**
 * The store probe (archive/probe.ts): a small object written, read back and deleted; before it,
 * where the store knows its free space, a floor (KIE_ARCHIVE_MIN_FREE) that a full disk's pause
 * waits for, so a disk with room for the probe's bytes but not for the next image stays paused.
 */
import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { probeStore } from "../../src/archive/probe.js";
import type { ArchiveStore } from "../../src/archive/types.js";

function store(free: number | undefined | "unknown") {
  const puts: string[] = [];
  const s: Pick<ArchiveStore, "put" | "head" | "remove" | "freeBytes"> = {
    put: async (key, body: Readable) => {
      body.resume();
      puts.push(key);
    },
    head: async () => ({ size: 1, metadata: {} }),
    remove: async () => {},
    ...(free === "unknown" ? {} : { freeBytes: async () => free }),
  };
  return { s, puts };
}

const MiB = 1_048_576;

describe("probeStore", () => {
  it("refuses as a full disk while the store's free space is under the floor, writing nothing", async () => {
    const { s, puts } = store(10 * MiB);
    await expect(probeStore(s, { minFreeBytes: 256 * MiB })).rejects.toMatchObject({
      code: "no_space",
      message: expect.stringContaining("10.0 MiB free where the archive writes, under the 256.0 MiB"),
    });
    expect(puts).toEqual([]);
  });

  it.each([
    ["enough free", 300 * MiB, 256 * MiB],
    ["no floor set", 1, 0],
    ["a free space the store cannot tell", undefined, 256 * MiB],
    ["a store with no such figure (S3)", "unknown" as const, 256 * MiB],
  ])("writes its object with %s", async (_name, free, minFreeBytes) => {
    const { s, puts } = store(free);
    await probeStore(s, { minFreeBytes });
    expect(puts).toEqual([".kie-batch-probe.json"]);
  });
});
