/**
 * The submit window through spawned processes (issue 10): an 800-row batch with
 * KIE_SUBMIT_WINDOW=20 holds 20 submit jobs after `enqueue`, and two `worker` processes on the
 * simulator feed the rest as rows leave `queued` until every row is archived, each created once.
 * Then a batch whose first feed was lost (its rows recorded, no job at all, as a producer killed
 * after its ledger write leaves them): the reconciler's sweep feeds it and the workers finish it.
 */
import { Queue } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import { bullPrefix } from "../../src/worker/jobs.js";
import { type E2eDeployment, simStats, spawnSimulator, startDeployment } from "../helpers/e2e-deployment.js";
import { ProcessSet } from "../helpers/processes.js";

const procs = new ProcessSet();
let dep: E2eDeployment | undefined;

afterEach(async () => {
  await procs.killAll();
  await dep?.close();
  dep = undefined;
});

/** Submit jobs present in the deployment's submit queue (waiting, prioritized, delayed, active). */
async function submitJobCount(d: E2eDeployment): Promise<number> {
  const queue = new Queue("submit", {
    connection: d.redis,
    prefix: bullPrefix(d.env.KIE_QUEUE_PREFIX!, "submit"),
  });
  try {
    return await queue.getJobCountByTypes("wait", "prioritized", "delayed", "active");
  } finally {
    await queue.close();
  }
}

/**
 * Two workers until `batch` is done; every row archived, one create per row. Meanwhile the batch
 * is sampled: its fed-and-queued rows never pass the window, and rows are held while it runs.
 */
async function finish(
  d: E2eDeployment,
  env: Record<string, string>,
  url: string,
  batch: string,
  rows: number,
  window: number,
) {
  for (const n of [1, 2]) procs.start(`worker-${n}`, ["worker"], env);
  let sampling = true;
  let maxFedQueued = 0;
  let heldSeen = 0;
  const sampler = (async () => {
    while (sampling) {
      const s = await d.ledger.getBatch(batch);
      if (s) {
        maxFedQueued = Math.max(maxFedQueued, s.queued - (s.held ?? 0) - s.waitingBudget);
        heldSeen = Math.max(heldSeen, s.held ?? 0);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const summary = await d.waitFinished(batch, 360_000).finally(() => {
    sampling = false;
  });
  await sampler;
  expect(maxFedQueued).toBeLessThanOrEqual(window);
  expect(heldSeen).toBeGreaterThan(0);
  expect(summary).toMatchObject({
    total: rows,
    archived: rows,
    failed: 0,
    cancelled: 0,
    queued: 0,
    held: 0,
    waitingBudget: 0,
    creditsSpent: 8 * rows,
    creditsReserved: 0,
  });
  const stats = await simStats(url);
  expect(stats.creates).toBe(rows);
  expect(Object.values(stats.createsByRequestHash).filter((n) => n > 1)).toEqual([]);
  expect(procs.errorLogs()).toEqual([]);
}

describe("the submit window, end to end", () => {
  it("an 800-row batch with a window of 20 holds 20 jobs, and workers feed it to the last row (some 80 refills)", {
    timeout: 420_000,
  }, async () => {
    dep = await startDeployment({ label: "window", report: () => procs.report() });
    const url = await spawnSimulator(procs);
    const env = {
      ...dep.env,
      KIE_BASE_URL: url,
      KIE_RATE_LIMIT: "2000/2s",
      KIE_SUBMIT_WINDOW: "20",
      ARCHIVE_DIR: dep.archiveDir,
    };
    const manifest = await dep.writeManifest("window", 800);
    const enqueued = await procs.run(["enqueue", manifest, "--batch", "window"], env, 120_000);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(await submitJobCount(dep)).toBe(20);
    expect(await dep.ledger.getBatch("window")).toMatchObject({ queued: 800, held: 780, fedSeq: 20 });
    await finish(dep, env, url, "window", 800, 20);
  });

  it("a batch whose first feed was lost is fed by the reconciler's sweep, then by the workers", {
    timeout: 420_000,
  }, async () => {
    dep = await startDeployment({ label: "window-lost", report: () => procs.report() });
    const url = await spawnSimulator(procs);
    const env = {
      ...dep.env,
      KIE_BASE_URL: url,
      KIE_RATE_LIMIT: "2000/2s",
      KIE_SUBMIT_WINDOW: "20",
      KIE_RECONCILE_EVERY: "1s",
      ARCHIVE_DIR: dep.archiveDir,
    };
    const rows = 300;
    // What a producer killed between its ledger write and its first feed leaves: held rows only.
    await dep.ledger.addRows(
      "lost",
      Array.from({ length: rows }, (_, i) => ({
        id: `r${i + 1}`,
        line: i + 2,
        prompt: `a lighthouse at dusk, study ${i + 1}`,
        params: {},
        metadata: {},
        estimatedCredits: 8,
      })),
      { submitWindow: 20, priority: 1000 },
    );
    expect(await submitJobCount(dep)).toBe(0);
    await finish(dep, env, url, "lost", rows, 20);
  });
});
