/**
 * No row is polled forever (invariant 1): KIE_MAX_WAIT ends a task whose status call keeps
 * answering something without an outcome.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { CallFault } from "../../src/simulator/types.js";
import { startHarness, type WorkerHarness } from "../helpers/worker-harness.js";

describe("worker: poll deadlines", () => {
  let h: WorkerHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("a status call that answers code 500 every time fails the row after KIE_MAX_WAIT, task kept", async () => {
    h = await startHarness({ env: { KIE_MAX_WAIT: "2s", KIE_POLL_INTERVAL: "200ms" } });
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
    }
    // Failed, not resubmitted: one create per row.
    expect(pipeline.sim.stats().creates).toBe(2);
  });
});
