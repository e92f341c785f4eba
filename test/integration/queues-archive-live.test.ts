import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jobKey } from "../../src/worker/jobs.js";
import { type OpsFixture, opsFixture } from "./ops-helpers.js";

/*
 * QueueSet.archiveJobLive: what a resumed archive asks before it fails a row KIE no longer gives
 * the images of (worker/poll-archiving.ts): a waiting or delayed archive job will archive or fail
 * the row itself; a missing one will not (nor a finished one: any state but waiting, delayed,
 * prioritized or active).
 */

let fx: OpsFixture;
beforeEach(() => {
  fx = opsFixture();
});
afterEach(async () => {
  await fx.close();
});

const archive = (rowId: string) => ({
  batch: "b",
  rowId,
  taskId: `t-${rowId}`,
  imageUrls: ["https://files.example/a.png"],
  completedAt: 1,
  tries: 0,
});

describe("the archive stage's queue: is the row's archive job live", () => {
  it("waiting or delayed: yes; none, or one removed: no", async () => {
    await fx.queues.addArchive(archive("r1"));
    await fx.queues.addArchive(archive("r2"), { delayMs: 60_000 });
    expect(await fx.queues.archiveJobLive("b", "r1")).toBe(true);
    expect(await fx.queues.archiveJobLive("b", "r2")).toBe(true);
    expect(await fx.queues.archiveJobLive("b", "r3")).toBe(false);

    // Removed (done with): nothing will run it.
    await fx.queues.queues.archive.remove(jobKey("b", "r1"));
    expect(await fx.queues.archiveJobLive("b", "r1")).toBe(false);
  });
});
