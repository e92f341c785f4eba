/**
 * A poll that finds its task done archives the row in the same job (issue 10: two jobs a row, not
 * three) when its process runs the archive stage with a slot free and archiving is not paused;
 * otherwise the row is handed to the archive stage as before. Real Redis, the simulator and a
 * folder store. The archive jobs a deployment got are read from the archive queue's job counter,
 * which BullMQ's add script increments for every add, a custom job id or not.
 */
import { mkdir, mkdtemp, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jobKey } from "../../src/worker/jobs.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until, type WorkerHarness } from "../helpers/worker-harness.js";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `r-${i + 1}` }));

/** Archive jobs ever added in the harness's deployment. */
async function archiveJobsAdded(h: WorkerHarness): Promise<number> {
  const { queues, redis } = h.pipeline;
  return Number((await redis.get(queues.queues.archive.toKey("id"))) ?? 0);
}

describe("worker: a finished task is archived in its poll job", () => {
  const harnesses = harnessPerTest();

  it("every row archived with no archive job while the process has archive slots free", async () => {
    const h = await harnesses.start();
    // At most two polls at once against four archive slots: every finished row finds one free.
    await h.worker({ concurrency: { poll: 2, archive: 4 } });
    await h.pipeline.addRows("inl", rows(10));
    const summary = await h.pipeline.waitFinished("inl", 30_000);
    expect(summary).toMatchObject({ total: 10, archived: 10, failed: 0 });
    expect(await archiveJobsAdded(h)).toBe(0);
    const row = await h.pipeline.ledger.getRow("inl", "r-1");
    expect(row?.images[0]?.location).toContain(join("inl", "r-1.png"));
  });

  it("a process that does not run the archive stage hands every row to it, as before", async () => {
    const h = await harnesses.start();
    await h.worker({ stages: ["submit", "poll"] });
    await h.worker({ stages: ["archive"] });
    await h.pipeline.addRows("apart", rows(4));
    const summary = await h.pipeline.waitFinished("apart", 30_000);
    expect(summary).toMatchObject({ total: 4, archived: 4, failed: 0 });
    expect(await archiveJobsAdded(h)).toBe(4);
  });

  it("a worker closed mid-archive releases its poll job; the next worker archives the row", async () => {
    const h = await harnesses.start();
    const { sim, ledger } = h.pipeline;
    // The first image download never answers: the poll job is archiving inline when it closes.
    sim.injectFaults("image", { kind: "hang" });
    const first = await h.worker();
    await h.pipeline.addRows("abort", [{ id: "x" }]);
    await until("the row archiving, its image asked for", async () => {
      const row = await ledger.getRow("abort", "x");
      return row?.status === "archiving" && (sim.stats().faults.hang ?? 0) >= 1;
    });
    await first.close(5_000);
    expect((await ledger.getRow("abort", "x"))?.status).toBe("archiving");
    // Released back to delayed, not completed: the poll job still holds the row.
    expect(await h.pipeline.queues.queues.poll.getJobState(jobKey("abort", "x", 0))).toBe("delayed");
    expect(await archiveJobsAdded(h)).toBe(0);

    await h.worker();
    const summary = await h.pipeline.waitFinished("abort", 30_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    // Its next run found the row archiving and added the archive job (poll-archiving.ts).
    expect(await archiveJobsAdded(h)).toBe(1);
  });

  it("a store that refuses during an inline archive: rows wait in archiving, then are archived once it answers", async () => {
    const base = await mkdtemp(join(tmpdir(), "kie-inline-outage-"));
    try {
      // ARCHIVE_DIR is a link, so "the folder" can be made writable under the running worker.
      // Root writes through mode bits: as root it points into sysfs, which refuses mkdir (EPERM).
      const readOnly = join(base, "read-only");
      await mkdir(readOnly, { mode: 0o555 });
      const archiveDir = join(base, "archive");
      await symlink(process.getuid?.() === 0 ? "/sys" : readOnly, archiveDir);
      const h = await harnesses.start({ env: { ARCHIVE_DIR: archiveDir } });
      await h.worker({ settings: { storeProbeMs: 300 } });
      await h.pipeline.addRows("ro", rows(3));

      const waiting = await until("every row waits in archiving", async () => {
        const s = await h.pipeline.ledger.getBatch("ro");
        return s?.archiving === 3 ? s : false;
      });
      expect(waiting).toMatchObject({ failed: 0, archived: 0 });
      // Each row handed to the archive stage: the first after its inline try paused archiving, the
      // others at the pause.
      await until("an archive job for every row", async () => (await archiveJobsAdded(h)) === 3);

      const writable = join(base, "writable");
      await mkdir(writable);
      await symlink(writable, join(base, "archive.next"));
      await rename(join(base, "archive.next"), archiveDir);
      const summary = await h.pipeline.waitFinished("ro", 30_000);
      expect(summary).toMatchObject({ total: 3, archived: 3, failed: 0 });
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
