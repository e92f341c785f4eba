/**
 * A row cancelled while its submit job waits at the fleet's gate (a pause) is never paid for:
 * the submit stage looks at the row again after the gate opens.
 */
import { describe, expect, it } from "vitest";
import { reconcileNow } from "../../src/app/reconciler.js";
import { cancelBatch } from "../../src/commands/cancel.js";
import { silentLogger } from "../../src/core/logger.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

describe("worker: cancel during a pause", () => {
  const harnesses = harnessPerTest();

  it("rows cancelled while their submit jobs wait at a paused gate are not submitted after resume", async () => {
    const h = await harnesses.start();
    const { sim, ledger, queues } = h.pipeline;
    const fleet = h.fleet();
    await fleet.pause.pause("manual", "test: hold submissions");
    await h.worker();
    await h.pipeline.addRows(
      "bc",
      Array.from({ length: 3 }, (_, i) => ({ id: `c-${i + 1}` })),
    );
    // The worker takes the jobs and holds them at the gate.
    const harness = h;
    await until("submit jobs held at the gate", async () => {
      const counts = await harness.pipeline.queues.queues.submit.getJobCounts("active");
      return (counts.active ?? 0) >= 3;
    });

    const out: string[] = [];
    const report = await cancelBatch(
      {
        ledger,
        queues,
        out: { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream,
      } as Parameters<typeof cancelBatch>[0],
      "bc",
    );
    expect(report.cancelled).toBe(3);
    await fleet.pause.resume();

    await until("the held jobs to finish", async () => {
      const counts = await harness.pipeline.queues.queues.submit.getJobCounts("active", "wait", "delayed");
      return (counts.active ?? 0) + (counts.wait ?? 0) + (counts.delayed ?? 0) === 0;
    });
    expect(sim.stats().creates).toBe(0);
    expect(await ledger.getBatch("bc")).toMatchObject({ total: 3, cancelled: 3, creditsReserved: 0 });
  });
  it("a cancel cut short after its mark: the rows it never reached are cancelled by their own jobs, none created, every reservation back", async () => {
    const h = await harnesses.start();
    const { sim, ledger } = h.pipeline;
    const fleet = h.fleet();
    await fleet.pause.pause("manual", "test: hold submissions");
    await h.worker();
    await h.pipeline.addRows(
      "bcut",
      Array.from({ length: 4 }, (_, i) => ({ id: `k-${i + 1}`, estimatedCredits: 8 })),
    );
    const harness = h;
    await until("submit jobs held at the gate", async () => {
      const counts = await harness.pipeline.queues.queues.submit.getJobCounts("active");
      return (counts.active ?? 0) >= 4;
    });
    // What a cancel killed right after its mark leaves: the mark, every row still queued.
    await ledger.markCancelled("bcut", true);
    await fleet.pause.resume();

    // A job cancels its row, then gives its reservation back: both, for every row (a reservation
    // never given back times this out).
    const summary = await until("every row cancelled, every reservation back", async () => {
      const s = await ledger.getBatch("bcut");
      return s?.cancelled === 4 && s.creditsReserved === 0 ? s : undefined;
    });
    expect(summary).toMatchObject({ queued: 0, uncertain: 0 });
    expect(sim.stats().creates).toBe(0);
  });
  it("a cancel cut short after its mark: rows waiting for budget or held by the submit window, which no job meets, are cancelled once the reconciler gives them one", async () => {
    const h = await harnesses.start();
    const { sim, ledger, queues, redis } = h.pipeline;
    const fleet = h.fleet();
    await fleet.pause.pause("manual", "test: hold submissions");
    await h.worker();
    // Six rows of 8 credits, a budget of 16, a window of 4: four fed (two reserve, two park), two held.
    const rows = Array.from({ length: 6 }, (_, i) => ({
      id: `w-${i + 1}`,
      line: i + 2,
      prompt: `a lantern, study ${i + 1}`,
      params: {},
      metadata: {},
      estimatedCredits: 8,
    }));
    await ledger.addRows("bwait", rows, { budget: 16, submitWindow: 4 });
    const fed = await ledger.feedWindow("bwait");
    await queues.addSubmitBulk(
      fed.fed.map(({ rowId, resubmit }) => ({ batch: "bwait", rowId, resubmit })),
      {},
    );
    const harness = h;
    await until("two rows reserved, two parked, two held", async () => {
      const s = await harness.pipeline.ledger.getBatch("bwait");
      return s?.waitingBudget === 2 && s.held === 2 && s.creditsReserved === 16;
    });
    // What a cancel killed right after its mark leaves.
    await ledger.markCancelled("bwait", true);
    await fleet.pause.resume();
    await until("the two jobs to cancel their rows", async () => {
      const s = await harness.pipeline.ledger.getBatch("bwait");
      return s?.cancelled === 2 && s.creditsReserved === 0;
    });
    // The parked and held rows have no job, and nothing wakes or feeds a cancelled batch.
    const stuck = await ledger.getBatch("bwait");
    expect(stuck).toMatchObject({ queued: 4, waitingBudget: 2, held: 2 });

    // The sweep (rows a minute old: the clock two minutes on) cancels them, adding no job.
    const report = await reconcileNow(
      { redis, ledger, queues, clock: { now: () => Date.now() + 120_000 }, log: silentLogger() },
      "bwait",
    );
    expect(report).toMatchObject({ cancelled: 4, requeued: 0, failed: 0 });
    const summary = (await ledger.getBatch("bwait"))!;
    expect(summary.cancelled).toBe(6);
    expect(summary).toMatchObject({ queued: 0, waitingBudget: 0, held: 0, creditsReserved: 0 });
    expect(summary.finishedAt).toBeDefined();
    expect(sim.stats().creates).toBe(0);
    expect((await ledger.getBatch("bwait"))!.repaired ?? 0).toBe(0);
  });
});
