/**
 * Fetching results: an expired result URL is refreshed through download-url, so is one whose host
 * keeps failing (from the third try), a transient download-url failure is retried, and a host outside the allow-list is refused at once with
 * nothing fetched from it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until, type WorkerHarness } from "../helpers/worker-harness.js";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `r-${i + 1}` }));

describe("worker: downloads", () => {
  const harnesses = harnessPerTest();

  /** Runs submit and poll only, until every row waits for its archive; returns the taskIds. */
  async function generateOnly(harness: WorkerHarness, batch: string, count: number): Promise<string[]> {
    const generator = await harness.worker({ stages: ["submit", "poll"] });
    await harness.pipeline.addRows(batch, rows(count));
    await until("every row to wait for its archive", async () => {
      const summary = await harness.pipeline.ledger.getBatch(batch);
      return summary?.archiving === count;
    });
    await generator.close(5_000);
    const taskIds: string[] = [];
    for (const { id } of rows(count))
      taskIds.push((await harness.pipeline.ledger.getRow(batch, id))!.taskId!);
    return taskIds;
  }

  it("an expired result URL is refreshed through download-url and archived", async () => {
    const h = await harnesses.start();
    const { sim, ledger, archiveDir } = h.pipeline;
    const taskIds = await generateOnly(h, "bexp", 2);
    for (const taskId of taskIds) sim.expireFiles(taskId);
    expect(sim.stats().downloads).toBe(0);

    await h.worker({ stages: ["archive"] });
    const summary = await h.pipeline.waitFinished("bexp", 15_000);
    expect(summary).toMatchObject({ total: 2, archived: 2, failed: 0 });
    const stats = sim.stats();
    expect(stats.downloadUrlCalls).toBeGreaterThanOrEqual(2);
    expect(stats.downloads).toBe(2); // the refreshed links, once each
    const row = await ledger.getRow("bexp", "r-1");
    expect((await readFile(join(archiveDir, "bexp", "r-1.png"))).length).toBe(row?.bytes);
  });

  it("a 500 from download-url while refreshing is retried, not a failed row", async () => {
    const h = await harnesses.start();
    const { sim } = h.pipeline;
    const [taskId] = await generateOnly(h, "bexp500", 1);
    sim.expireFiles(taskId!);
    sim.injectFaults("download-url", { kind: "code", code: 500 });

    await h.worker({ stages: ["archive"] });
    const summary = await h.pipeline.waitFinished("bexp500", 15_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    expect(sim.stats().downloadUrlCalls).toBe(2);
  });

  it("a result URL whose host keeps answering 502 is archived through a refreshed URL after two tries", async () => {
    const h = await harnesses.start();
    const { sim, ledger, archiveDir } = h.pipeline;
    const [taskId] = await generateOnly(h, "bbroken", 1);
    sim.breakFiles(taskId!);

    await h.worker({ stages: ["archive"] });
    const summary = await h.pipeline.waitFinished("bbroken", 30_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    const stats = sim.stats();
    // Two tries of the result URL as it is, then one refresh on the third.
    expect(stats.downloadUrlCalls).toBe(1);
    expect(stats.downloads).toBe(1);
    const row = await ledger.getRow("bbroken", "r-1");
    expect((await readFile(join(archiveDir, "bbroken", "r-1.png"))).length).toBe(row?.bytes);
  });

  it("a download host outside the allow-list is refused at once, naming it, and nothing is fetched", async () => {
    // Result URLs name "localhost:<port>"; KIE_BASE_URL (allowed) is 127.0.0.1:<port>.
    const h = await harnesses.start({ sim: { publicHost: "localhost" } });
    const { sim, ledger } = h.pipeline;
    await h.worker();
    await h.pipeline.addRows("bssrf", [{ id: "x" }]);

    const summary = await h.pipeline.waitFinished("bssrf", 15_000);
    expect(summary).toMatchObject({ total: 1, failed: 1, archived: 0 });
    const row = await ledger.getRow("bssrf", "x");
    expect(row?.error).toContain(`Refused to download from localhost:${sim.port}`);
    expect(row?.error).toContain("KIE_DOWNLOAD_HOSTS");
    const stats = sim.stats();
    expect(stats.downloads).toBe(0);
    expect(stats.downloadUrlCalls).toBe(0); // refused, not mistaken for an expired URL
  });

  it("the same host listed in KIE_DOWNLOAD_HOSTS is archived", async () => {
    const h = await harnesses.start({ sim: { publicHost: "localhost" } });
    const { sim } = h.pipeline;
    await h.worker({ env: { KIE_DOWNLOAD_HOSTS: `localhost:${sim.port}` } });
    await h.pipeline.addRows("ballow", [{ id: "x" }]);

    const summary = await h.pipeline.waitFinished("ballow", 15_000);
    expect(summary).toMatchObject({ total: 1, archived: 1, failed: 0 });
    expect(sim.stats().downloads).toBe(1);
  });
});
