/**
 * No row is polled forever (invariant 1): KIE_MAX_WAIT ends a task whose status call keeps
 * answering something without an outcome, and a task KIE never knows ends its grace counted
 * uncertain, its credits kept against the budget (invariant 2), since KIE may still run it.
 */
import { describe, expect, it } from "vitest";
import { readBatchStatus } from "../../src/report/status.js";
import { batchLines } from "../../src/report/status-text.js";
import type { CallFault } from "../../src/simulator/types.js";
import { harnessPerTest } from "../helpers/harness-per-test.js";
import { until } from "../helpers/worker-harness.js";

describe("worker: poll deadlines", () => {
  const harnesses = harnessPerTest();

  it("a status call that answers code 500 every time fails the row after KIE_MAX_WAIT, task kept", async () => {
    const h = await harnesses.start({ env: { KIE_MAX_WAIT: "2s", KIE_POLL_INTERVAL: "200ms" } });
    const { pipeline } = h;
    // More 500s than the deadline leaves room for: every status call of the test meets one.
    const fault: CallFault = { kind: "code", code: 500 };
    pipeline.sim.injectFaults("status", ...Array.from({ length: 500 }, () => fault));
    await h.worker();
    await pipeline.addRows("bdead", [{ id: "a" }, { id: "b" }]);

    const summary = await pipeline.waitFinished("bdead", 20_000);
    expect(summary).toMatchObject({ total: 2, failed: 2, archived: 0 });
    for (const id of ["a", "b"]) {
      const row = await pipeline.ledger.getRow("bdead", id);
      expect(row?.taskIds).toHaveLength(1);
      expect(row?.error).toContain("KIE_MAX_WAIT");
      expect(row?.error).toContain("code 500");
      expect(row?.error).toContain("`kie-batch retry` polls it again");
      expect(row?.error).toContain("a late finish is archived");
    }
    // Failed, not resubmitted: one create per row.
    expect(pipeline.sim.stats().creates).toBe(2);
  });

  it("a task KIE does not know past the grace is counted uncertain and its credits stay spent-uncertain", async () => {
    // KIE answers "recordInfo is null" for ten minutes after each create: past the 1 s grace.
    const h = await harnesses.start({
      sim: { recordLagMs: 600_000 },
      env: { KIE_RECORD_LAG_GRACE: "1s", KIE_MAX_RESUBMITS: "0", KIE_POLL_INTERVAL: "200ms" },
    });
    const { pipeline } = h;
    await h.worker();
    await pipeline.addRows("bghost", [{ id: "g", estimatedCredits: 8 }]);

    const summary = await pipeline.waitFinished("bghost", 15_000);
    expect(summary).toMatchObject({
      total: 1,
      failed: 1,
      uncertain: 1,
      creditsUncertain: 8,
      creditsReserved: 0,
    });
    const row = await pipeline.ledger.getRow("bghost", "g");
    expect(row).toMatchObject({ uncertain: 1, taskIds: [expect.any(String)] });
    expect(row?.error).toContain("unknown_task");
  });
  it("a task that finishes after KIE_MAX_WAIT is archived by its late check: one create, its reservation settled", async () => {
    // Ten minutes a generation against a 1 s KIE_MAX_WAIT: late checks at 2, 4, 8... s after the submit.
    const h = await harnesses.start({
      sim: { latency: { minMs: 600_000, maxMs: 600_000 } },
      env: { KIE_MAX_WAIT: "1s", KIE_POLL_INTERVAL: "200ms" },
    });
    const { pipeline } = h;
    await h.worker();
    await pipeline.addRows("blate", [{ id: "late", estimatedCredits: 8 }]);
    expect(await pipeline.waitFinished("blate", 15_000)).toMatchObject({ failed: 1, creditsReserved: 8 });
    // `status` (what `status --wait` prints as it exits) says the failed row may still be archived.
    const status = await readBatchStatus(
      {
        ledger: pipeline.ledger,
        clock: { now: () => Date.now() },
        fleet: async () => ({ paused: null, archivePaused: null, accounts: [] }) as never,
      },
      "blate",
    );
    expect(batchLines(status).join("\n")).toContain(
      "8 credits still held by failed rows whose tasks KIE may still charge: a row failed at KIE_MAX_WAIT is checked again until about a day after its submit and archived if its task finishes; otherwise `kie-batch retry blate` polls it again",
    );

    // KIE finishes it now; nobody runs `retry`.
    pipeline.sim.completeAll();
    const summary = await until(
      "the late task's row to be archived",
      async () => {
        const s = await pipeline.ledger.getBatch("blate");
        return s?.archived === 1 ? s : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(summary).toMatchObject({ failed: 0, creditsReserved: 0, creditsSpent: 8 });
    const row = await pipeline.ledger.getRow("blate", "late");
    expect(row).toMatchObject({ status: "archived", taskIds: [expect.any(String)] });
    expect(row?.error).toBeUndefined();
    expect(row?.location).toBeDefined();
    expect(pipeline.sim.stats().creates).toBe(1);
  });
});
