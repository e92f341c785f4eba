/**
 * A row cancelled while its submit job waits at the fleet's gate (a pause) is never paid for:
 * the submit stage looks at the row again after the gate opens.
 */
import { describe, expect, it } from "vitest";
import { cancelBatch } from "../../src/commands/cancel.js";
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
});
